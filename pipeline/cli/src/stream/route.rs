//! Which processing worker of a group member holds each of its partitions, and when
//! to move one.
//!
//! A member polls on one thread and processes on `stream.workers` threads, each with a
//! Processor of its own; a partition lives on one worker at a time, so its records
//! stay in order without locks. New partitions go to the worker holding the fewest.
//! Load is not known in advance (producers key by MTA host, and a few hosts can fill
//! a few partitions), so the poller counts records per partition and, every so often,
//! moves the partition that best evens out the busiest and the idlest worker. Only the
//! polling thread (its loop and the rebalance callbacks inside `poll`) uses this.

use std::ops::DerefMut;

/// One assigned partition.
#[derive(Debug)]
struct Route {
    topic: String,
    partition: i32,
    worker: usize,
    /// Records since the last look, plus seven eighths of what it had at that look:
    /// fetches bring one partition's records in runs of thousands, so one look's
    /// counts alone would move partitions back and forth.
    recent: u64,
}

/// A partition to move from one worker to another.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: usize,
    pub to: usize,
}

#[derive(Debug)]
pub(crate) struct Routes {
    routes: Vec<Route>,
    workers: usize,
}

impl Routes {
    pub(crate) fn new(workers: usize) -> Routes {
        Routes {
            routes: Vec::new(),
            workers: workers.max(1),
        }
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.partition == partition && r.topic == topic)
    }

    /// The worker of a record's partition, counting the record; `None` when the
    /// partition is not assigned here.
    pub(crate) fn worker_of(&mut self, topic: &str, partition: i32) -> Option<usize> {
        let i = self.find(topic, partition)?;
        let r = &mut self.routes[i];
        r.recent += 1;
        Some(r.worker)
    }

    /// Counts `records` more for a partition, if it is held here.
    pub(crate) fn add(&mut self, topic: &str, partition: i32, records: u64) {
        if let Some(i) = self.find(topic, partition) {
            self.routes[i].recent += records;
        }
    }

    /// Places a newly assigned partition on the worker holding the fewest (the one
    /// already holding it, if any).
    pub(crate) fn place(&mut self, topic: &str, partition: i32) -> usize {
        if let Some(i) = self.find(topic, partition) {
            return self.routes[i].worker;
        }
        let mut held = vec![0usize; self.workers];
        for r in &self.routes {
            held[r.worker] += 1;
        }
        let worker = (0..self.workers).min_by_key(|w| held[*w]).unwrap_or(0);
        self.routes.push(Route {
            topic: topic.to_owned(),
            partition,
            worker,
            recent: 0,
        });
        worker
    }

    /// Forgets a revoked partition; returns the worker that held it.
    pub(crate) fn remove(&mut self, topic: &str, partition: i32) -> Option<usize> {
        let i = self.find(topic, partition)?;
        Some(self.routes.remove(i).worker)
    }

    /// The move that leaves the busiest worker lightest, by recent records, if it makes
    /// that worker at least a fifth lighter (a move costs a wait for the worker to
    /// catch up, and near-even loads would trade partitions back and forth). Decays
    /// the counts for the next look.
    pub(crate) fn plan(&mut self) -> Option<Move> {
        let mut load = vec![0u64; self.workers];
        for r in &self.routes {
            load[r.worker] += r.recent;
        }
        let busy = (0..self.workers).max_by_key(|w| load[*w])?;
        let idle = (0..self.workers).min_by_key(|w| load[*w])?;
        let best = self
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.worker == busy && r.recent > 0)
            .map(|(i, r)| (i, (load[busy] - r.recent).max(load[idle] + r.recent)))
            .min_by_key(|(_, heavier)| *heavier);
        for r in &mut self.routes {
            r.recent -= r.recent / 8;
        }
        let (i, heavier) = best?;
        if busy == idle || heavier * 5 > load[busy] * 4 {
            return None;
        }
        let r = &mut self.routes[i];
        r.worker = idle;
        Some(Move {
            topic: r.topic.clone(),
            partition: r.partition,
            from: busy,
            to: idle,
        })
    }
}

/// The polling thread's memo of the last record's route. Fetches bring one
/// partition's records in runs of thousands, so the routes (behind the lock the
/// rebalance callbacks share) are looked up once per run, not once per record (that
/// lock, with the shared count of `Hooks::stop_after`, took 3–4 % of the polling
/// thread). The memo is good while the routes' version is the one it was taken at.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// `None`: nothing memoized.
    key: Option<(String, i32, u64)>,
    worker: Option<usize>,
    /// Records routed by the memo, not yet counted in the routes.
    uncounted: u64,
}

impl Memo {
    /// The worker of a record's partition, counting the record; `routes` (which
    /// locks them) is called only when the memo does not hold the partition at
    /// `version`.
    pub(crate) fn worker<R: DerefMut<Target = Routes>>(
        &mut self,
        version: u64,
        topic: &str,
        partition: i32,
        routes: impl FnOnce() -> R,
    ) -> Option<usize> {
        if let Some((t, p, v)) = &self.key
            && *p == partition
            && *v == version
            && t == topic
        {
            self.uncounted += 1;
            return self.worker;
        }
        let mut routes = routes();
        self.count(&mut routes);
        self.worker = routes.worker_of(topic, partition);
        match &mut self.key {
            Some((t, p, v)) => {
                t.clear();
                t.push_str(topic);
                (*p, *v) = (partition, version);
            }
            None => self.key = Some((topic.to_owned(), partition, version)),
        }
        self.worker
    }

    /// Counts the records the memo routed in the routes, before they are looked at.
    pub(crate) fn count(&mut self, routes: &mut Routes) {
        if let Some((t, p, _)) = &self.key
            && self.uncounted > 0
        {
            routes.add(t, *p, self.uncounted);
        }
        self.uncounted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(routes: &mut Routes, counts: &[(i32, u64)]) {
        for (p, n) in counts {
            for _ in 0..*n {
                routes.worker_of("mail", *p);
            }
        }
    }

    #[test]
    fn new_partitions_spread_by_count_and_keep_their_worker() {
        let mut r = Routes::new(2);
        let placed: Vec<usize> = (0..5).map(|p| r.place("mail", p)).collect();
        assert_eq!(placed, [0, 1, 0, 1, 0]);
        assert_eq!(r.place("mail", 3), 1, "assigned again: where it is");
        assert_eq!(r.remove("mail", 0), Some(0));
        assert_eq!(r.place("other", 0), 0, "worker 0 holds the fewest now");
        assert_eq!(r.worker_of("mail", 9), None);
        assert_eq!(r.worker_of("other", 0), Some(0));
    }

    #[test]
    fn the_busiest_worker_sheds_the_partition_that_evens_loads_out() {
        // Keyed by three hosts, the busy partitions 1, 3 and 5 all landed on worker 1.
        let mut r = Routes::new(2);
        for p in 0..6 {
            r.place("mail", p);
        }
        feed(&mut r, &[(1, 300), (3, 400), (5, 350)]);
        let m = r.plan().expect("a move");
        assert_eq!((m.from, m.to), (1, 0));
        // Moving 5 (350) leaves max(700, 350); 3 would leave 650 vs 400: better.
        assert_eq!(m.partition, 3);
        assert_eq!(r.worker_of("mail", 3), Some(0));
        // Now two partitions against one of the same size: any move leaves the
        // busier side no lighter by a fifth, so the partitions stay.
        for _ in 0..20 {
            feed(&mut r, &[(1, 300), (3, 400), (5, 350)]);
            assert_eq!(r.plan(), None);
        }
        // Partition 3 drains while 1 and 5 go on: soon 1 joins it on worker 0.
        let mut looks = 0;
        let m = loop {
            looks += 1;
            assert!(looks < 10, "no move after {looks} looks");
            feed(&mut r, &[(1, 300), (5, 350)]);
            if let Some(m) = r.plan() {
                break m;
            }
        };
        assert_eq!((m.partition, m.from, m.to), (1, 1, 0));
    }

    #[test]
    fn runs_of_one_partition_at_a_time_do_not_move_partitions_back_and_forth() {
        // A fetch brings thousands of one partition's records at a time; the look
        // sees runs, not rates. Three equal partitions, all on worker 1: once they
        // are split two and one, they stay.
        let mut r = Routes::new(2);
        for p in 0..6 {
            r.place("mail", p);
        }
        let mut moves = Vec::new();
        for look in 0..60 {
            let p = [1, 3, 5][look % 3];
            let q = [1, 3, 5][(look + 1) % 3];
            feed(&mut r, &[(p, 5000), (q, 1000)]);
            if r.plan().is_some() {
                moves.push(look);
            }
        }
        assert!(!moves.is_empty() && moves.len() <= 2, "moves at looks {moves:?}");
        assert!(moves.iter().all(|l| *l < 6), "moves at looks {moves:?}");
    }

    #[test]
    fn the_memo_routes_as_the_routes_do_counts_every_record_and_sees_changes() {
        let routes = std::sync::Mutex::new(Routes::new(2));
        let mut version = 0;
        for p in 0..4 {
            routes.lock().expect("routes").place("mail", p);
        }
        let mut memo = Memo::default();
        let lookups = std::cell::Cell::new(0);
        let route = |memo: &mut Memo, version, topic: &str, p| {
            memo.worker(version, topic, p, || {
                lookups.set(lookups.get() + 1);
                routes.lock().expect("routes")
            })
        };
        // Runs of one partition at a time, as fetches bring them: partitions 0 and 2
        // on worker 0 are busy, 1 and 3 on worker 1 are not.
        let records = [(0, 900), (1, 1), (2, 1000), (1, 1), (3, 1)];
        for (p, n) in records {
            for _ in 0..n {
                assert_eq!(route(&mut memo, version, "mail", p), Some(p as usize % 2));
            }
        }
        assert_eq!(
            route(&mut memo, version, "other", 0),
            None,
            "same partition, another topic"
        );
        assert_eq!(route(&mut memo, version, "mail", 9), None);
        assert_eq!(route(&mut memo, version, "mail", 0), Some(0));
        assert_eq!(lookups.get(), 8, "once per run");
        // What the memo routed is counted before the routes are looked at, so worker
        // 0 is the busy one and sheds a partition (counting lookups alone, worker 1
        // would look busier, and nothing would move).
        let mut r = routes.lock().expect("routes");
        memo.count(&mut r);
        let m = r.plan().expect("a move");
        assert_eq!((m.partition, m.from, m.to), (0, 0, 1));
        drop(r);
        // The memo still holds partition 0 on worker 0; the change came with a new
        // version, so it looks again.
        version += 1;
        assert_eq!(route(&mut memo, version, "mail", 0), Some(1));
        assert_eq!(lookups.get(), 9);
    }

    #[test]
    fn nothing_moves_without_records_or_with_one_worker() {
        let mut r = Routes::new(2);
        r.place("mail", 0);
        r.place("mail", 1);
        assert_eq!(r.plan(), None);
        let mut one = Routes::new(1);
        one.place("mail", 0);
        one.place("mail", 1);
        feed(&mut one, &[(0, 10), (1, 1000)]);
        assert_eq!(one.plan(), None);
        // A lone busy partition has nowhere better to go.
        feed(&mut r, &[(1, 1000)]);
        assert_eq!(r.plan(), None);
    }
}
