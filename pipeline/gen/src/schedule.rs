//! The time-ordered event queue: every in-flight message's next line, the
//! next arrival and the next background line, popped in (time, insertion)
//! order. Messages live in a slab whose slots are reused, so memory follows
//! the number of messages in flight, not the length of the run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::message::Msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Event {
    /// A new message arrives.
    Arrival,
    /// A line not tied to a message (cron, anvil, ...).
    Noise,
    /// The next step of the message in this slab slot.
    Msg(u32),
}

#[derive(Debug, Default)]
pub(crate) struct Schedule {
    /// (time µs, insertion sequence, event): the sequence keeps equal times in
    /// FIFO order, so the output does not depend on heap internals.
    heap: BinaryHeap<Reverse<(i64, u64, Event)>>,
    seq: u64,
    slab: Vec<Option<Msg>>,
    free: Vec<u32>,
}

impl Schedule {
    pub(crate) fn push(&mut self, t: i64, ev: Event) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, ev)));
    }

    /// Re-inserts a popped entry unchanged, so it comes out next again.
    pub(crate) fn push_back(&mut self, entry: (i64, u64, Event)) {
        self.heap.push(Reverse(entry));
    }

    pub(crate) fn pop(&mut self) -> Option<(i64, u64, Event)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// Stores a message and schedules its first step.
    pub(crate) fn insert(&mut self, msg: Msg) {
        let Some(t) = msg.steps.front().map(|s| s.t) else {
            return;
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(msg);
                s
            }
            None => {
                self.slab.push(Some(msg));
                (self.slab.len() - 1) as u32
            }
        };
        self.push(t, Event::Msg(slot));
    }

    pub(crate) fn msg_mut(&mut self, slot: u32) -> Option<&mut Msg> {
        self.slab.get_mut(slot as usize).and_then(Option::as_mut)
    }

    pub(crate) fn release(&mut self, slot: u32) {
        if let Some(s) = self.slab.get_mut(slot as usize) {
            *s = None;
            self.free.push(slot);
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.slab.len() - self.free.len()
    }
}
