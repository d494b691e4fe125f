//! A Corral route plugin (world `route` of wit/worlds.wit).
//! Build: `cargo build --release --target wasm32-wasip2`.

use corral_sdk::{Descriptor, HttpRequest, HttpResponse, Route, kv, log};
use serde::Serialize;

struct Plugin;

#[derive(Serialize)]
struct Greeting<'a> {
    hello: &'a str,
    visits: i64,
}

impl Route for Plugin {
    fn describe() -> Descriptor {
        Descriptor::new("my-route", "0.1.0").route("GET", "/my-route/:name")
    }

    fn handle(request: HttpRequest) -> HttpResponse {
        let name = request.param("name").unwrap_or("world");
        // The plugin's own kv bucket; `kv::Bucket::shared(..)` reaches a granted one.
        let visits = match kv::increment(&format!("visits.{name}"), 1) {
            Ok(visits) => visits,
            Err(error) => return HttpResponse::text(500, format!("kv: {error:?}")),
        };
        log::write(log::Level::Info, "greeted", &[("name", name)]);
        HttpResponse::json(200, &Greeting { hello: name, visits })
    }
}

corral_sdk::export_route!(Plugin);
