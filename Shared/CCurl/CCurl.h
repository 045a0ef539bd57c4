// The system libcurl (Debian: libcurl4-openssl-dev), for the SMTP mail transport.
#include <curl/curl.h>
