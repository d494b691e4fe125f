//! In-process calls between plugins ([`Gateway::serve_internal`]): a
//! plugin's request to `http://NAME.plugin/…`, once its grant is checked
//! (`corral_runtime::outbound`) and its depth counted (`outbound`), is
//! routed by the same router, through the same limits, canary and metrics
//! as a public request — without a socket — and reaches only routes of
//! plugin `NAME`. Its call context (tenant, request id, correlation,
//! depth) is the caller's, set by the host, never read from headers.

use corral_routes::Match;
use corral_runtime::CallContext;
use http::{Request, Response, StatusCode};

use crate::http::gateway::{Gateway, Routed};
use crate::http::respond::{Body, BoxError, problem};

impl Gateway {
    /// Serves `request` with a route of plugin `plugin`, in `call`'s context.
    pub(crate) async fn serve_internal<B>(&self, plugin: &str, request: Request<B>, call: CallContext) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let request_id = call.request_id.clone();
        let not_served = |status: StatusCode, error: &str| {
            problem(
                status,
                serde_json::json!({"error": error, "message": format!(
                    "plugin {plugin} serves no route for {method} {path}"
                ), "request_id": request_id}),
            )
        };
        let catalog = self.registry.catalog();
        let (target, routed) = match catalog.router.route(method.as_str(), &path) {
            Match::Found { target, params, method, pattern } => (*target, Routed { params, method, pattern }),
            Match::MethodNotAllowed(_) => return not_served(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Match::NotFound => return not_served(StatusCode::NOT_FOUND, "not_found"),
        };
        let Some(slot) = catalog.slots.get(target).filter(|slot| slot.mounted.plugin.name() == plugin) else {
            return not_served(StatusCode::NOT_FOUND, "not_found");
        };
        self.serve_slot(slot, call, request, routed, |_, _| {}).await
    }
}
