//! The tenant contract at every door: a tenant id that is too long or not
//! ASCII letters, digits, `-`, `_`, `.` is refused where it comes in (400
//! `invalid_tenant` over HTTP, `INVALID_ARGUMENT` over gRPC) and is never
//! read as the default tenant, so nothing it sent reaches the log, a view
//! or a cart, and a projection folding beside it keeps running.

use corral_fixtures::{CART_COUNTER, PROJECTION_COUNT, ROUTE_EMITTER};
use corral_server::http::grpc::proto::MutateRequest;
use corral_server::http::grpc::proto::cart_actor_client::CartActorClient;
use http::HeaderValue;

use crate::projections::settled;
use crate::{Host, Reply, get, plugins_dir, request, send};

async fn with_tenant(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8], tenant: &[u8]) -> Reply {
    let mut request = request(method, addr, path, body);
    request.headers_mut().insert("x-corral-tenant", HeaderValue::from_bytes(tenant).unwrap());
    send(addr, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_outside_the_contract_are_refused_at_every_door_and_never_read_as_the_default() {
    let plugins =
        plugins_dir(&[("emitter", ROUTE_EMITTER), ("count", PROJECTION_COUNT), ("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path());
    let long = "t".repeat(2000);
    let bad: [&[u8]; 5] = [long.as_bytes(), "café".as_bytes(), b"caf\xe9", b"a b", b"acme/../globex"];
    let mutation = br#"{"kind": "add", "payload": 5}"#;
    for tenant in bad {
        let shown = String::from_utf8_lossy(tenant);
        let doors = [
            (host.public, "POST", "/emit/orders.created", &b"{}"[..]),
            (host.public, "GET", "/views/count/orders.created", &b""[..]),
            (host.public, "POST", "/carts/counter/c1", &mutation[..]),
            (host.public, "GET", "/carts/counter/c1", &b""[..]),
            (host.admin, "POST", "/events/orders.created", &b"{}"[..]),
            (host.admin, "POST", "/carts/counter/c1/verify", &b""[..]),
        ];
        for (addr, method, path, body) in doors {
            let reply = with_tenant(addr, method, path, body, tenant).await;
            assert_eq!(reply.status, 400, "{method} {path} with tenant {shown:?}: {}", reply.text());
            let error = reply.json();
            assert_eq!(error["error"], "invalid_tenant", "{error}");
            assert!(error["message"].as_str().unwrap().starts_with("x-corral-tenant: the tenant id"), "{error}");
        }
    }

    // Over gRPC, in the message and in the metadata.
    let mut client = CartActorClient::connect(format!("http://{}", host.public)).await.unwrap();
    let grpc_add = |tenant: &str| MutateRequest {
        plugin: "counter".into(),
        cart_id: "c1".into(),
        kind: "add".into(),
        payload: b"5".to_vec(),
        client_id: String::new(),
        tenant: tenant.into(),
    };
    let refused = client.mutate(grpc_add(&long)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("at most 64 bytes"), "{refused:?}");
    let mut request = tonic::Request::new(grpc_add(""));
    request.metadata_mut().insert("x-corral-tenant", "a:b".parse().unwrap());
    let refused = client.mutate(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("x-corral-tenant metadata"), "{refused:?}");

    // Nothing reached the default tenant, and the projection runs on.
    assert_eq!(with_tenant(host.public, "POST", "/emit/orders.created", b"{}", b"acme").await.status, 200);
    let status = settled(&host, "count", "running").await;
    assert_eq!(status["checkpoint"], 1, "only the one valid event is in the log: {status}");
    assert_eq!(with_tenant(host.public, "GET", "/views/count/orders.created", b"", b"acme").await.text(), "1");
    assert_eq!(get(host.public, "/views/count/orders.created").await.status, 404, "no view of the default tenant");
    let cart = get(host.public, "/carts/counter/c1").await.json();
    assert_eq!(cart["version"], 0, "the default tenant's cart was never written: {cart}");
}
