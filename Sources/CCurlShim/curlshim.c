#include "curlshim.h"
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint8_t *data; size_t len, cap; } pb_buf;

struct pb_http {
    CURL *easy;
    struct curl_slist *headers;
    pb_buf body, head;
};

static int buf_append(pb_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d; b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    pb_http *h = ud;
    return buf_append(&h->body, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    pb_http *h = ud;
    /* A new status line (after a 100 Continue or a redirect) starts a new header block. */
    if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0) h->head.len = 0;
    return buf_append(&h->head, p, size * n) == 0 ? size * n : 0;
}

pb_http *pb_http_new(void) {
    pb_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->easy = curl_easy_init();
    if (!h->easy) { free(h); return NULL; }
    return h;
}

void pb_http_free(pb_http *h) {
    if (!h) return;
    curl_slist_free_all(h->headers);
    curl_easy_cleanup(h->easy);
    free(h->body.data);
    free(h->head.data);
    free(h);
}

void pb_http_reset(pb_http *h) {
    curl_slist_free_all(h->headers);
    h->headers = NULL;
    h->body.len = 0;
    h->head.len = 0;
    curl_easy_reset(h->easy);
}

int pb_http_prepare(pb_http *h, const char *method, const char *url, const void *body, size_t body_len,
                    long connect_timeout_ms, long timeout_ms, int verify_tls, const char *ca_bundle) {
    CURL *e = h->easy;
    CURLcode rc = CURLE_OK;
    /* A private CA (AWS_CA_BUNDLE, --ca-bundle) replaces the system store; NULL restores the default. */
    rc |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_bundle);
    rc |= curl_easy_setopt(e, CURLOPT_URL, url);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify_tls ? 1L : 0L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify_tls ? 2L : 0L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Large PutRecords bodies (up to 5 MiB) go out in few large writes; answers come in in few reads. */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 2L * 1024 * 1024);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    if (strcmp(method, "GET") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        rc |= curl_easy_setopt(e, CURLOPT_POST, 1L);
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body_len ? body : "");
        if (strcmp(method, "POST") != 0) rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    /* No "Expect: 100-continue" round trip for large bodies; no curl-chosen Content-Type. */
    h->headers = curl_slist_append(h->headers, "Expect:");
    return rc == CURLE_OK ? 0 : -1;
}

int pb_http_add_header(pb_http *h, const char *line) {
    struct curl_slist *l = curl_slist_append(h->headers, line);
    if (!l) return -1;
    h->headers = l;
    return 0;
}

int pb_http_attach(pb_http *h, void *multi) {
    curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
    return curl_multi_add_handle((CURLM *)multi, h->easy) == CURLM_OK ? 0 : -1;
}

int pb_http_detach(pb_http *h, void *multi) {
    return curl_multi_remove_handle((CURLM *)multi, h->easy) == CURLM_OK ? 0 : -1;
}

void *pb_http_easy(pb_http *h) { return h->easy; }

long pb_http_status(pb_http *h) {
    long code = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

const uint8_t *pb_http_body(pb_http *h, size_t *len) { *len = h->body.len; return h->body.data; }
const uint8_t *pb_http_headers(pb_http *h, size_t *len) { *len = h->head.len; return h->head.data; }

double pb_http_total_seconds(pb_http *h) {
    double t = 0;
    curl_easy_getinfo(h->easy, CURLINFO_TOTAL_TIME, &t);
    return t;
}

int pb_multi_setopt_long(void *multi, int option, long value) {
    return curl_multi_setopt((CURLM *)multi, (CURLMoption)option, value) == CURLM_OK ? 0 : -1;
}
