//! Event handlers: event → kv and emit effects; a failing event is reported
//! with its index and the next one is still handled.

use corral_fixtures::EVENT_KV_RECORDER;
use corral_testkit::{Event, Expect, ExpectedError};

use crate::{kit, mismatch};

#[tokio::test]
async fn events_leave_kv_entries_and_emitted_events() {
    let mut kit = kit(EVENT_KV_RECORDER).await;
    let run = kit
        .events([
            Event::new("orders.created", "x"),
            Event::new("payments.made", "not subscribed"),
            Event::new("orders.created", "echo"),
            Event::new("orders.created", "fail").id("poison-1"),
            Event::new("orders.paid", "y"),
        ])
        .await
        .unwrap();
    run.expect(
        &Expect::new()
            .kv("seen.orders.created", "2")
            .kv("seen.orders.paid", "1")
            .no_kv("seen.payments.made")
            .kv("log", "1:x;3:echo;5:y;")
            .emits("audit.echo", "echo")
            .error(ExpectedError::code("rejected").at(3).containing("poison-1")),
    )
    .unwrap();

    let text = mismatch(run.expect(&Expect::new().kv("log", "1:x;").emits_nothing()));
    assert!(text.contains(r#"expected: "1:x;""#) && text.contains(r#"actual: "1:x;3:echo;5:y;""#), "{text}");
    assert!(text.contains("emitted topics differ") && text.contains(r#"actual: "audit.echo""#), "{text}");
    assert!(text.contains("event [3] on orders.created failed: guest_error rejected"), "{text}");
}
