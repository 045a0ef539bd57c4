#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H

// Fixed-argument wrappers for libcurl's variadic curl_easy_setopt and curl_easy_getinfo, which
// Swift cannot call. Plain C types only (CURL is void, options and codes are ints), so this header
// needs no curl.h and Swift sees each curl type once, from the CCurl module.

#include <stddef.h>

typedef size_t (*ccurl_read_callback)(char *buffer, size_t size, size_t count, void *userdata);
typedef int (*ccurl_debug_callback)(void *handle, int type, char *data, size_t size, void *userdata);

int ccurl_setopt_long(void *handle, int option, long value);
int ccurl_setopt_string(void *handle, int option, const char *value);
int ccurl_setopt_pointer(void *handle, int option, void *value);
int ccurl_setopt_read_function(void *handle, ccurl_read_callback callback);
int ccurl_setopt_debug_function(void *handle, ccurl_debug_callback callback);
int ccurl_getinfo_long(void *handle, int info, long *value);

#endif
