/* llmux serve: the browser page at GET /. The page is tools/serve/page.html,
 * turned into serve_page_html and its Content-Security-Policy at build time
 * (embed_page.cmake), so the binary serves it with no file to find. */
#define SERVE_INTERNAL
#include "serve.h"

#include <string.h>

/* page_data.c, generated */
extern const unsigned char serve_page_html[];
extern const size_t serve_page_html_len;
extern const char serve_page_csp[];

void serve_handle_page(h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = serve_page_html_len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/html; charset=utf-8"));
    /* only the page's own inline script and style (by hash) run; fetch()
     * reaches the gateway itself and nothing else */
    /* h2o 2.2.5 has no token for these two: by name */
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("content-security-policy"), 0, NULL,
                          serve_page_csp, strlen(serve_page_csp));
    h2o_add_header_by_str(&req->pool, &req->res.headers,
                          H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    /* revalidate each time: a new build's page (and CSP) is seen at once */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_send_inline(req, (const char *)serve_page_html, serve_page_html_len);
}
