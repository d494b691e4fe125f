//! Projections: events → views, per tenant; a failing event halts the fold
//! and is reported with its index.

use corral_fixtures::PROJECTION_COUNT;
use corral_testkit::{Event, Expect, ExpectedError};

use crate::{kit, mismatch};

#[tokio::test]
async fn events_fold_into_views_per_tenant() {
    let mut kit = kit(PROJECTION_COUNT).await;
    let run = kit
        .events([
            Event::new("orders.created", "a"),
            Event::new("orders.created", "b"),
            Event::new("orders.paid", "c"),
            Event::new("orders.created", "d").tenant("acme"),
            Event::new("orders.ignored", "e"),
            Event::new("payments.made", "f"),
        ])
        .await
        .unwrap();
    run.expect(&Expect::new().view("orders.created", "2").view("orders.paid", "1").no_view("orders.ignored")).unwrap();
    run.expect(&Expect::new().tenant("acme").view("orders.created", "1").no_view("orders.paid")).unwrap();
    assert_eq!(run.views.len(), 3, "{:?}", run.views);

    // Views carry over to the next call; `delete` removes one.
    let run = kit.events([Event::new("orders.paid", "delete")]).await.unwrap();
    run.expect(&Expect::new().no_view("orders.paid").view("orders.created", "2")).unwrap();
    let text = mismatch(run.expect(&Expect::new().view("orders.created", "3").view("orders.paid", "1")));
    assert!(text.contains(r#"view "orders.created" differs"#) && text.contains(r#"actual: "2""#), "{text}");
    assert!(text.contains(r#"view "orders.paid": expected a value, but there is none"#), "{text}");
}

#[tokio::test]
async fn a_failing_event_halts_the_fold_and_is_reported_with_its_index() {
    let mut kit = kit(PROJECTION_COUNT).await;
    let events =
        [Event::new("orders.created", "a"), Event::new("orders.created", "poison"), Event::new("orders.created", "b")];
    let run = kit.events(events).await.unwrap();
    assert_eq!(run.failures.len(), 1);
    assert_eq!(run.failures[0].index, 1);
    run.expect(
        &Expect::new()
            .view("orders.created", "1")
            .error(ExpectedError::code("poison").at(1).containing("cannot be folded")),
    )
    .unwrap();
    let text = mismatch(run.expect(&Expect::new().view("orders.created", "1")));
    assert!(text.contains("[1] event [1] on orders.created failed: guest_error poison"), "{text}");
    let text = mismatch(run.expect(&Expect::new().error(ExpectedError::code("poison").at(2))));
    assert!(text.contains("index \"2\", code \"poison\""), "{text}");
}
