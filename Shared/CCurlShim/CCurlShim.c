#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include "CCurlShim.h"

int ccurl_setopt_long(void *handle, int option, long value) {
    return (int)curl_easy_setopt(handle, (CURLoption)option, value);
}

int ccurl_setopt_string(void *handle, int option, const char *value) {
    return (int)curl_easy_setopt(handle, (CURLoption)option, value);
}

int ccurl_setopt_pointer(void *handle, int option, void *value) {
    return (int)curl_easy_setopt(handle, (CURLoption)option, value);
}

int ccurl_setopt_read_function(void *handle, ccurl_read_callback callback) {
    return (int)curl_easy_setopt(handle, CURLOPT_READFUNCTION, (curl_read_callback)callback);
}

int ccurl_setopt_debug_function(void *handle, ccurl_debug_callback callback) {
    return (int)curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, (curl_debug_callback)callback);
}

int ccurl_getinfo_long(void *handle, int info, long *value) {
    return (int)curl_easy_getinfo(handle, (CURLINFO)info, value);
}
