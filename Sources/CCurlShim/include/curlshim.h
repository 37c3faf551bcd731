#ifndef CURLSHIM_H
#define CURLSHIM_H
#include <stddef.h>
#include <stdint.h>

/// One HTTP exchange on a reusable curl easy handle: the request's headers and body (borrowed: the caller
/// keeps them alive until the exchange completes) and the response's status, headers and body (owned here).
/// curl_easy_setopt is variadic, which Swift cannot call; these functions are the whole surface pinbench uses.
typedef struct pb_http pb_http;

pb_http *pb_http_new(void);
void pb_http_free(pb_http *h);
/// Clears the previous exchange (keeps the handle's connection cache and buffers' capacity).
void pb_http_reset(pb_http *h);
/// method: "GET", "PUT", "POST", "DELETE", "HEAD". body may be NULL (len 0).
int pb_http_prepare(pb_http *h, const char *method, const char *url, const void *body, size_t body_len,
                    long connect_timeout_ms, long timeout_ms, int verify_tls, const char *ca_bundle);
/// Adds one "Name: value" header line (copied).
int pb_http_add_header(pb_http *h, const char *line);
/// Attaches the prepared handle to a multi handle (or detaches it).
int pb_http_attach(pb_http *h, void *multi);
int pb_http_detach(pb_http *h, void *multi);
/// The easy handle, to match curl_multi_info_read's messages.
void *pb_http_easy(pb_http *h);

long pb_http_status(pb_http *h);
const uint8_t *pb_http_body(pb_http *h, size_t *len);
const uint8_t *pb_http_headers(pb_http *h, size_t *len);
/// Bytes uploaded and seconds taken by the last exchange (for reports).
double pb_http_total_seconds(pb_http *h);

/// curl_multi_setopt with long values (variadic in curl).
int pb_multi_setopt_long(void *multi, int option, long value);
#endif
