//! `cargo bench --bench pick_bench`: the cost of one rarest-first pick and
//! of one HAVE update at 1k, 100k and 1M pieces, for pollen's bucket picker
//! and for the naive O(pieces) scan it replaced (implemented below, for
//! comparison only). Printed, never asserted.
//!
//! The swarm: 20 peers whose bitfields have random densities (5 % to 95 %),
//! then repeated picks for a peer that has about half the pieces, with a
//! `wanted` filter that rejects a few pieces (as if in progress). The
//! figure that matters is the last column: the 1M / 1k ratio is about 1
//! for a picker whose cost does not grow with the torrent, and about 1000
//! for a scan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use pollen::bitfield::Bitfield;
use pollen::picker::{Picker, Strategy};
use pollen::rng::Rng;

/// Timed batches per figure; the median batch is reported.
const RUNS: usize = 7;
/// Peers in the swarm.
const PEERS: usize = 20;
/// Pieces the `wanted` filter rejects (pieces in progress).
const IN_PROGRESS: usize = 8;
/// HAVE updates per timed batch.
const HAVES_PER_RUN: usize = 10_000;

/// What a bench needs from a picker.
trait Pick {
    fn add_piece(&mut self, piece: u32);
    fn add_peer(&mut self, has: &Bitfield);
    fn pick(&self, peer_has: &Bitfield, wanted: impl Fn(u32) -> bool, rng: &mut Rng)
        -> Option<u32>;
}

impl Pick for Picker {
    fn add_piece(&mut self, piece: u32) {
        Picker::add_piece(self, piece);
    }
    fn add_peer(&mut self, has: &Bitfield) {
        Picker::add_peer(self, has);
    }
    fn pick(
        &self,
        peer_has: &Bitfield,
        wanted: impl Fn(u32) -> bool,
        rng: &mut Rng,
    ) -> Option<u32> {
        Picker::pick(self, peer_has, wanted, rng)
    }
}

/// The old picker: a count per piece, and a pick that scans every piece
/// the peer has for the least available, reservoir-sampling the ties.
struct NaivePicker {
    availability: Vec<u32>,
}

impl Pick for NaivePicker {
    fn add_piece(&mut self, piece: u32) {
        self.availability[piece as usize] += 1;
    }
    fn add_peer(&mut self, has: &Bitfield) {
        for piece in has.iter_ones() {
            self.add_piece(piece);
        }
    }
    fn pick(
        &self,
        peer_has: &Bitfield,
        wanted: impl Fn(u32) -> bool,
        rng: &mut Rng,
    ) -> Option<u32> {
        let mut best: Option<(u32, u32)> = None; // (availability, piece)
        let mut ties = 0;
        for piece in peer_has.iter_ones().filter(|&p| wanted(p)) {
            let avail = self.availability[piece as usize];
            if avail == 0 {
                continue;
            }
            match best {
                Some((b, _)) if avail > b => {}
                Some((b, _)) if avail == b => {
                    ties += 1;
                    if rng.below(ties) == 0 {
                        best = Some((avail, piece));
                    }
                }
                _ => {
                    best = Some((avail, piece));
                    ties = 1;
                }
            }
        }
        best.map(|(_, piece)| piece)
    }
}

/// A bitfield of `len` pieces, each present with probability `percent` %.
fn random_field(len: u32, percent: usize, rng: &mut Rng) -> Bitfield {
    let mut field = Bitfield::new(len);
    for piece in 0..len {
        if rng.below(100) < percent {
            field.set(piece);
        }
    }
    field
}

/// The swarm and the peer we pick for, the same for both pickers.
struct Scene {
    len: u32,
    peers: Vec<Bitfield>,
    peer_has: Bitfield,
    in_progress: Vec<u32>,
    haves: Vec<u32>,
}

impl Scene {
    fn new(len: u32) -> Scene {
        let mut rng = Rng::new(u64::from(len));
        let peers = (0..PEERS)
            .map(|_| {
                let percent = 5 + rng.below(91);
                random_field(len, percent, &mut rng)
            })
            .collect();
        let peer_has = random_field(len, 50, &mut rng);
        let in_progress = (0..IN_PROGRESS)
            .map(|_| rng.below(len as usize) as u32)
            .collect();
        let haves = (0..HAVES_PER_RUN * RUNS)
            .map(|_| rng.below(len as usize) as u32)
            .collect();
        Scene {
            len,
            peers,
            peer_has,
            in_progress,
            haves,
        }
    }
}

/// Median nanoseconds of one call, over `RUNS` batches of `per_run` calls.
fn median_ns(per_run: usize, mut batch: impl FnMut(usize)) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|run| {
            let start = Instant::now();
            batch(run);
            start.elapsed().as_nanos() as f64 / per_run as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

/// (ns per pick, ns per HAVE) for one picker on one scene.
fn measure<P: Pick>(mut picker: P, scene: &Scene, picks_per_run: usize) -> (f64, f64) {
    for peer in &scene.peers {
        picker.add_peer(peer);
    }
    let mut rng = Rng::new(7);
    let wanted = |p: u32| !scene.in_progress.contains(&p);
    // The first pick after the BITFIELDs pays the bucket rebuild: untimed.
    black_box(picker.pick(&scene.peer_has, wanted, &mut rng));
    let pick = median_ns(picks_per_run, |_| {
        for _ in 0..picks_per_run {
            black_box(picker.pick(black_box(&scene.peer_has), wanted, &mut rng));
        }
    });
    let have = median_ns(HAVES_PER_RUN, |run| {
        let haves = &scene.haves[run * HAVES_PER_RUN..(run + 1) * HAVES_PER_RUN];
        for &piece in haves {
            picker.add_piece(black_box(piece));
        }
    });
    // The order must still be usable after the HAVEs.
    assert!(picker.pick(&scene.peer_has, wanted, &mut rng).is_some());
    (pick, have)
}

/// Median nanoseconds of the first pick after the 20 BITFIELDs: the
/// bucket rebuild (a counting sort and a shuffle of every bucket).
fn rebuild_ns(scene: &Scene) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|run| {
            let mut picker = Picker::new(scene.len, Strategy::RarestFirst);
            for peer in &scene.peers {
                picker.add_peer(peer);
            }
            let mut rng = Rng::new(run as u64);
            let start = Instant::now();
            black_box(picker.pick(&scene.peer_has, |_| true, &mut rng));
            start.elapsed().as_nanos() as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn main() {
    println!("pick bench: rarest first, {PEERS} peers, picking for a peer with ~50 % (median of {RUNS} runs)");
    println!(
        "{:>9}  {:>14} {:>14}  {:>14} {:>14}  {:>16}",
        "pieces",
        "bucket pick ns",
        "bucket HAVE ns",
        "naive pick ns",
        "naive HAVE ns",
        "rebuild ms"
    );
    let mut rows = Vec::new();
    for len in [1_000u32, 100_000, 1_000_000] {
        let scene = Scene::new(len);
        let bucket = measure(Picker::new(len, Strategy::RarestFirst), &scene, 10_000);
        let naive_picks = (10_000_000 / len as usize).clamp(5, 10_000);
        let naive = measure(
            NaivePicker {
                availability: vec![0; len as usize],
            },
            &scene,
            naive_picks,
        );
        let rebuild = rebuild_ns(&scene) / 1e6;
        println!(
            "{len:>9}  {:>14.0} {:>14.1}  {:>14.0} {:>14.1}  {rebuild:>16.2}",
            bucket.0, bucket.1, naive.0, naive.1
        );
        rows.push((bucket, naive));
    }
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    println!(
        "ratio 1M/1k: bucket pick {:.1}x, bucket HAVE {:.1}x; naive pick {:.0}x, naive HAVE {:.1}x",
        last.0 .0 / first.0 .0,
        last.0 .1 / first.0 .1,
        last.1 .0 / first.1 .0,
        last.1 .1 / first.1 .1,
    );
}
