//! Carts: mutations → state and outbox events; a refused mutation changes
//! nothing and is reported with its index.

use corral_fixtures::CART_COUNTER;
use corral_testkit::{Expect, ExpectedError, Mutation};

use crate::{kit, mismatch};

#[tokio::test]
async fn mutations_give_state_and_outbox_events() {
    let mut kit = kit(CART_COUNTER).await;
    let run = kit.mutations("c1", [Mutation::new("add", "2"), Mutation::new("add", "3")]).await.unwrap();
    run.expect(&Expect::new().state("5").emits("counter.changed", "2").emits("counter.changed", "5")).unwrap();

    // State carries over per cart; another cart starts empty.
    let run = kit.mutations("c1", [Mutation::new("add", "1")]).await.unwrap();
    run.expect(&Expect::new().state("6").emits("counter.changed", "6")).unwrap();
    let run = kit.mutations("c2", [Mutation::new("add", "1")]).await.unwrap();
    run.expect(&Expect::new().state("1")).unwrap();

    let text = mismatch(run.expect(&Expect::new().state("7").emits("counter.changed", "7")));
    assert!(text.contains("state differs") && text.contains(r#"expected: "7""#), "{text}");
    assert!(text.contains("emitted [0] counter.changed payload differs"), "{text}");
}

#[tokio::test]
async fn refused_mutations_change_nothing_and_are_reported_by_index() {
    let mut kit = kit(CART_COUNTER).await;
    let run = kit
        .mutations("c1", [Mutation::new("add", "x"), Mutation::new("add", "4"), Mutation::new("double", "")])
        .await
        .unwrap();
    run.expect(
        &Expect::new()
            .state("4")
            .emits("counter.changed", "4")
            .error(ExpectedError::code("not-a-number").at(0))
            .error(ExpectedError::kind("unknown_kind").at(2).containing("declares: add, reset")),
    )
    .unwrap();

    let run = kit.mutations("c9", [Mutation::new("add", "nope")]).await.unwrap();
    run.expect(&Expect::new().no_state().emits_nothing().error(ExpectedError::code("not-a-number"))).unwrap();
    let text = mismatch(run.expect(&Expect::new().state("0")));
    assert!(text.contains("state: expected a state, but the cart has none"), "{text}");
    assert!(text.contains("(none)") && text.contains("not-a-number"), "{text}");
}
