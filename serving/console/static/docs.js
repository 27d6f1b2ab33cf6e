// The offline Swagger UI over this service's OpenAPI document; no validator badge (it would call out).
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/docs.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
  });
};
