//! Where a batched fold is: the segment of events begun last, how many
//! events' writes the guest has flushed, and the checks that keep the guest
//! to the protocol of `corral:plugin/batch`.

use std::sync::Arc;

use super::pending::PendingViews;
use crate::types::Event;

/// The guest broke the protocol of `corral:plugin/batch`, or the views
/// could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum WalkError {
    #[error("batch protocol: {0}")]
    Protocol(String),
    #[error("reading view {id:?}: {reason}")]
    Views { id: String, reason: String },
    /// An event read an input that its segment of several events shared:
    /// what it wrote may depend on another event's input.
    #[error("an input read in a segment of several events")]
    Misread,
}

/// The last write of a batch to a view: the event that wrote it (its index
/// in the batch), the view id and the value (none deletes the view).
pub(super) type Write = (u32, String, Option<Vec<u8>>);

/// Where a batched fold is; idle (no events) outside one.
#[derive(Default)]
pub(crate) struct Walk {
    events: Arc<[Event]>,
    start: usize,
    end: usize,
    views: Option<PendingViews>,
    /// Events per segment: 1 follows the guest event by event.
    stride: usize,
    /// Index (from `start`) of the first event of the segment begun last.
    pub(super) begun: Option<usize>,
    /// One past the last event of that segment: where `begin` is due.
    pub(super) next: usize,
    /// Segments begun.
    pub(super) segments: usize,
    /// Segments begun when the deadline last looked.
    deadline_seen: usize,
    /// How many events, from `start`, have all their writes in `views`.
    pub(super) flushed: usize,
    /// The guest broke the protocol: the batch stops where its writes do.
    pub(super) broken: bool,
    /// A buffer for the id `current` reads, kept for its allocation.
    pub(super) id: String,
    pub(super) metering: bool,
    /// Fuel the store was last filled with.
    pub(super) granted: u64,
    /// Fuel used up to the last refill.
    pub(super) fuel_used: u64,
    /// A view read failed: the host's fault, not the guest's.
    pub(super) views_failed: Option<String>,
}

impl Walk {
    pub(super) fn new(
        events: Arc<[Event]>,
        calls: std::ops::Range<usize>,
        views: PendingViews,
        stride: usize,
        granted: Option<u64>,
    ) -> Walk {
        let (metering, granted) = (granted.is_some(), granted.unwrap_or(0));
        let (start, end, stride) = (calls.start, calls.end, stride.max(1));
        Walk { events, start, end, views: Some(views), stride, metering, granted, ..Walk::default() }
    }

    /// Books the fuel used since the last refill, `left` being what remains.
    pub(super) fn book_fuel(&mut self, left: u64) {
        self.fuel_used += self.granted.saturating_sub(left);
    }

    pub(super) fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    fn event(&self, index: usize) -> Option<&Event> {
        self.events.get(self.start + index).filter(|_| index < self.len())
    }

    fn breach(&mut self, message: String) -> WalkError {
        self.broken = true;
        WalkError::Protocol(message)
    }

    /// Starts the segment from event `index`: returns its first event and
    /// where it ends.
    pub(super) fn begin(&mut self, index: u32) -> Result<(&Event, usize), WalkError> {
        let (index, due) = (index as usize, self.next);
        if index != due || index >= self.len() {
            return Err(self.breach(format!("begin({index}) where begin({due}) was due")));
        }
        self.begun = Some(index);
        self.next = index.saturating_add(self.stride).min(self.len());
        self.segments += 1;
        let next = self.next;
        let event = self.event(index).ok_or_else(|| WalkError::Protocol(format!("no event {index}")))?;
        Ok((event, next))
    }

    /// Whether a segment began since the last call: the deadline restarts
    /// for each segment.
    pub(crate) fn began_since_tick(&mut self) -> bool {
        let began = self.segments != self.deadline_seen;
        self.deadline_seen = self.segments;
        began
    }

    /// Whether the segment begun last stands for several events.
    pub(super) fn shared(&self) -> bool {
        self.begun.is_some_and(|begun| self.next - begun > 1)
    }

    /// View `id` of the tenant of event `index`, of the segment begun last,
    /// as the flushed writes left it.
    pub(super) fn current(&mut self, index: u32, id: &str) -> Result<Option<Vec<u8>>, WalkError> {
        let index = index as usize;
        let segment = self.begun.map(|begun| begun..self.next).filter(|segment| segment.contains(&index));
        let found = segment.and_then(|_| self.event(index)).zip(self.views.as_ref());
        let Some((event, views)) = found else {
            let begun = self.begun.map_or_else(|| "none".to_string(), |begun| format!("{begun}..{}", self.next));
            return Err(self.breach(format!("current() for event {index} outside the segment begun ({begun})")));
        };
        views.get(&event.tenant, id).map_err(|reason| {
            self.views_failed = Some(reason.clone());
            WalkError::Views { id: id.to_string(), reason }
        })
    }

    /// Takes the writes of events `flushed..through` into the views.
    pub(super) fn flush(&mut self, writes: Vec<Write>, through: u32) -> Result<(), WalkError> {
        let (through, next) = (through as usize, self.next);
        if through < self.flushed || through > next {
            let flushed = self.flushed;
            return Err(self.breach(format!("flush through event {through}: {flushed} flushed, {next} begun")));
        }
        let Some(views) = self.views.clone() else {
            return Err(self.breach("flush() outside a batch".into()));
        };
        // Every write is checked before any is taken, so a refused flush
        // leaves the views as they were: its events are folded again alone
        // (and one whose key cannot be stored fails there).
        let flushed = self.flushed;
        for (event, id, _) in &writes {
            let index = *event as usize;
            if !(flushed..through).contains(&index) || self.event(index).is_none() {
                return Err(self.breach(format!("a write by event {index} in a flush of {flushed}..{through}")));
            }
            if let Err(reason) = crate::views::check_view_id(id) {
                return Err(self.breach(format!("event {index} wrote a view it cannot name: {reason}")));
            }
        }
        for (event, id, value) in writes {
            if let Some(event) = self.event(event as usize) {
                views.write(&event.tenant, &id, value);
            }
        }
        self.flushed = through;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode::tests::event;
    use super::*;
    use crate::batch::ViewSource;

    struct Stored;

    impl ViewSource for Stored {
        fn get(&self, _tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
            match id {
                "broken" => Err("disk on fire".into()),
                _ => Ok(Some(format!("stored {id}").into_bytes())),
            }
        }
    }

    fn walk(events: &[Event], stride: usize) -> (Walk, PendingViews) {
        let views = PendingViews::new(Arc::new(Stored));
        (Walk::new(events.iter().cloned().collect(), 0..events.len(), views.clone(), stride, None), views)
    }

    fn put(event: u32, id: &str, value: &str) -> Write {
        (event, id.into(), Some(value.as_bytes().to_vec()))
    }

    #[test]
    fn a_read_sees_the_flushed_writes_of_its_tenant() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "b")];
        let (mut walk, views) = walk(&events, 1);
        walk.begin(0).unwrap();
        assert_eq!(walk.current(0, "v").unwrap().as_deref(), Some(&b"stored v"[..]));
        walk.begin(1).unwrap();
        walk.flush(vec![put(0, "v", "from e1")], 1).unwrap();
        assert_eq!(walk.current(1, "v").unwrap().as_deref(), Some(&b"from e1"[..]));
        walk.begin(2).unwrap();
        assert_eq!(walk.current(2, "v").unwrap().as_deref(), Some(&b"stored v"[..]), "another tenant");
        walk.flush(vec![put(1, "v", "from e2"), (2, "v".into(), None)], 3).unwrap();
        assert_eq!(walk.flushed, 3);
        assert_eq!(
            views.take_changes(),
            vec![(("a".into(), "v".into()), Some(b"from e2".to_vec())), (("b".into(), "v".into()), None)]
        );
    }

    #[test]
    fn a_segment_stands_for_the_events_of_its_stride() {
        let events: Vec<Event> = (0..5).map(|i| event(&format!("e{i}"), ["a", "b"][i % 2])).collect();
        let (mut walk, views) = walk(&events, 2);
        assert_eq!(walk.begin(0).map(|(event, next)| (event.id.clone(), next)).unwrap(), ("e0".into(), 2));
        assert!(walk.shared());
        assert_eq!(walk.current(1, "v").unwrap().as_deref(), Some(&b"stored v"[..]), "any event of the segment");
        walk.flush(vec![put(0, "v", "0"), put(1, "v", "1")], 2).unwrap();
        assert!(walk.begin(3).is_err(), "begin is due where the segment ends");
        let (mut walk, _) = self::walk(&events, 2);
        walk.begin(0).unwrap();
        assert!(walk.current(2, "v").is_err(), "an event past the segment");
        let (mut walk, _) = self::walk(&events, 2);
        walk.begin(0).unwrap();
        assert_eq!(walk.begin(2).unwrap().1, 4);
        assert!(walk.current(1, "v").is_err(), "an event before the segment");
        let (mut walk, _) = self::walk(&events, 2);
        walk.begin(0).unwrap();
        walk.begin(2).unwrap();
        assert_eq!(walk.begin(4).unwrap().1, 5, "the last segment ends with the batch");
        assert!(!walk.shared(), "one event left");
        assert_eq!((walk.segments, views.take_changes().len()), (3, 2));
    }

    #[test]
    fn a_flush_covers_the_events_it_names_and_no_others() {
        let events = [event("e1", "a"), event("e2", "a"), event("e3", "a")];
        let (mut walk, _) = walk(&events, 1);
        assert!(walk.flush(Vec::new(), 0).is_ok(), "nothing to flush before begin(0)");
        walk.begin(0).unwrap();
        assert!(walk.flush(Vec::new(), 2).is_err(), "events not begun yet");
        assert!(walk.broken);

        let (mut walk, views) = self::walk(&events, 1);
        walk.begin(0).unwrap();
        walk.begin(1).unwrap();
        let refused = walk.flush(vec![put(0, "v", "0"), put(1, "v", "1")], 1);
        assert!(refused.is_err(), "a write by an event the flush does not cover");
        assert!(views.take_changes().is_empty(), "a refused flush takes none of its writes");
        walk.flush(vec![put(0, "v", "1")], 1).unwrap();
        assert!(walk.flush(vec![put(0, "v", "2")], 2).is_err(), "a write by an event flushed before");
        assert!(walk.flush(Vec::new(), 0).is_err(), "a flush going back");
    }

    #[test]
    fn a_flush_naming_a_view_no_key_can_hold_breaks_the_walk_and_writes_nothing() {
        let events = [event("e1", "a")];
        let (mut walk, views) = walk(&events, 1);
        walk.begin(0).unwrap();
        let long = "v".repeat(crate::views::MAX_VIEW_ID_BYTES + 1);
        let refused = walk.flush(vec![put(0, "fine", "1"), put(0, &long, "1")], 1).unwrap_err();
        assert!(refused.to_string().contains("event 0 wrote a view it cannot name"), "{refused}");
        assert!(walk.broken);
        assert!(views.take_changes().is_empty());
        let (mut walk, _) = self::walk(&events, 1);
        walk.begin(0).unwrap();
        assert!(walk.flush(vec![put(0, "a\0b", "1")], 1).is_err(), "a NUL in the id");
    }

    #[test]
    fn begin_takes_every_event_once_in_order() {
        let events = [event("e1", "a"), event("e2", "a")];
        let (mut walk, _) = walk(&events, 1);
        assert!(walk.current(0, "v").is_err(), "current before begin");
        assert!(walk.begin(1).is_err(), "an index skipped");
        let (mut walk, _) = self::walk(&events, 1);
        assert_eq!(walk.begin(0).unwrap().0.id, "e1");
        assert!(!walk.shared());
        assert!(walk.begin(0).is_err(), "an index repeated");
        let (mut walk, _) = self::walk(&events, 1);
        walk.begin(0).unwrap();
        walk.begin(1).unwrap();
        assert!(walk.begin(2).is_err(), "past the last event");
        assert!(walk.broken);
    }

    #[test]
    fn a_failed_read_is_the_hosts_fault() {
        let events = [event("e1", "a")];
        let (mut walk, _) = walk(&events, 1);
        walk.begin(0).unwrap();
        assert!(matches!(walk.current(0, "broken"), Err(WalkError::Views { .. })));
        assert_eq!(walk.views_failed.as_deref(), Some("disk on fire"));
        assert!(!walk.broken);
    }
}
