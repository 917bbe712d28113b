#pragma once
// GET /openapi.json and GET /docs: the API described (OpenAPI 3.0, from
// host/http/openapi.json) and a page that shows it (host/http/docs.html),
// built into the binary so they need nothing but the host.

namespace eventflow::http {

extern const char* const kOpenApiJson;
extern const char* const kDocsHtml;

}  // namespace eventflow::http
