//! Specs of the piece picker: rarest first with random tie-breaks,
//! availability kept up to date by HAVE, bitfields and disconnects, removed
//! pieces never picked, the sequential and random strategies, and a
//! comparison with a naive model under random operations.
//!
//! Layer 0, test-only: values in, picks out.

use super::*;

fn field(len: u32, ones: &[u32]) -> Bitfield {
    let mut b = Bitfield::new(len);
    for &i in ones {
        b.set(i);
    }
    b
}

/// A picker whose availability is `counts` (each piece announced by HAVEs).
fn with_counts(counts: &[u32], strategy: Strategy) -> Picker {
    let mut picker = Picker::new(counts.len() as u32, strategy);
    for (piece, &n) in counts.iter().enumerate() {
        for _ in 0..n {
            picker.add_piece(piece as u32);
        }
    }
    picker
}

/// Checks the bucket invariants of a clean order against the counts.
fn assert_consistent(picker: &Picker) {
    let order = picker.order.borrow();
    if order.dirty {
        return;
    }
    assert_eq!(order.starts.first(), Some(&0));
    assert_eq!(order.starts.last(), Some(&order.list.len()));
    assert!(order.starts.windows(2).all(|w| w[0] <= w[1]));
    for level in 0..order.starts.len() - 1 {
        for &piece in order.bucket(level) {
            assert_eq!(picker.availability(piece) as usize, level, "piece {piece}");
            assert!(!picker.removed.has(piece));
        }
    }
    for (at, &piece) in order.list.iter().enumerate() {
        assert_eq!(order.position[piece as usize] as usize, at);
    }
    let listed = order.position.iter().filter(|&&p| p != NOT_LISTED).count();
    assert_eq!(listed, order.list.len());
    let pickable = picker.availability.len() - picker.removed.count_ones() as usize;
    assert_eq!(order.list.len(), pickable);
}

/// A list of pieces (or of availabilities) in a table row.
type Pieces = &'static [u32];

/// Four lists, named in each table's header comment.
type Row = (Pieces, Pieces, Pieces, Pieces);

#[test]
fn rarest_piece_the_peer_has_is_picked() {
    // (availability, peer has, wanted excludes, expected picks)
    let cases: &[Row] = &[
        (&[3, 2, 1, 3], &[0, 1, 2, 3], &[], &[2]),
        (&[3, 2, 1, 3], &[0, 1, 2, 3], &[2], &[1]),
        (&[3, 2, 1, 3], &[0, 3], &[], &[0, 3]),
        (&[3, 2, 1, 3], &[], &[], &[]),
        (&[0, 5, 0, 4], &[0, 1, 2, 3], &[], &[3]), // never availability 0
        (&[0, 0], &[0, 1], &[], &[]),
        (&[2, 2, 2, 7], &[3], &[], &[3]),
    ];
    for &(counts, has, excluded, expected) in cases {
        let picker = with_counts(counts, Strategy::RarestFirst);
        let has = field(counts.len() as u32, has);
        let mut rng = Rng::new(1);
        for _ in 0..20 {
            let pick = picker.pick(&has, |p| !excluded.contains(&p), &mut rng);
            match pick {
                Some(p) => assert!(expected.contains(&p), "{counts:?}: {p}"),
                None => assert!(expected.is_empty(), "{counts:?}: none"),
            }
        }
    }
}

#[test]
fn ties_are_broken_at_random_across_all_candidates() {
    let mut picker = Picker::new(16, Strategy::RarestFirst);
    picker.add_peer(&Bitfield::full(16));
    picker.add_peer(&field(16, &[0, 1, 2, 3])); // 0..4 are less rare
    let has = field(16, &[0, 1, 4, 6, 7, 9, 10, 12, 15]);
    let mut rng = Rng::new(9);
    let mut seen = [0u32; 16];
    for _ in 0..1400 {
        seen[picker.pick(&has, |p| p != 9, &mut rng).unwrap() as usize] += 1;
    }
    for piece in 0..16u32 {
        let expected = has.has(piece) && piece >= 4 && piece != 9;
        let count = seen[piece as usize];
        assert_eq!(count > 0, expected, "{piece}: {seen:?}");
        if expected {
            assert!(count > 50, "{piece}: {seen:?}");
        }
    }
}

#[test]
fn have_and_disconnect_move_availability() {
    let mut picker = Picker::new(3, Strategy::RarestFirst);
    let peer = field(3, &[0, 2]);
    picker.add_peer(&peer);
    picker.add_piece(2);
    assert_eq!((picker.availability(0), picker.availability(2)), (1, 2));
    picker.remove_peer(&peer);
    assert_eq!((picker.availability(0), picker.availability(2)), (0, 1));
    picker.remove_peer(&peer); // more than was added: stays at zero
    assert_eq!(picker.availability(0), 0);
    picker.add_piece(99); // out of range: ignored
    picker.remove_piece(99);
    picker.restore_piece(99);
    assert_eq!(picker.availability(99), 0);
}

#[test]
fn have_moves_a_piece_one_bucket_without_a_rebuild() {
    let mut picker = with_counts(&[1, 1, 1, 2, 3], Strategy::RarestFirst);
    let mut rng = Rng::new(2);
    let all = Bitfield::full(5);
    picker.pick(&all, |_| true, &mut rng); // clean order
    let steps: [(u32, &[u32]); 3] = [(0, &[1, 2]), (1, &[2]), (2, &[0, 1, 2, 3])];
    for (piece, rarest) in steps {
        picker.add_piece(piece);
        assert!(!picker.order.borrow().dirty);
        assert_consistent(&picker);
        let mut picks: Vec<u32> = (0..80)
            .filter_map(|_| picker.pick(&all, |_| true, &mut rng))
            .collect();
        picks.sort_unstable();
        picks.dedup();
        assert_eq!(picks, rarest, "after a HAVE of {piece}");
    }
    // Every piece now has 2 except piece 4 (3): all of 0..4 tie.
    assert_eq!(
        (0..5).map(|p| picker.availability(p)).collect::<Vec<_>>(),
        [2, 2, 2, 2, 3]
    );
}

#[test]
fn a_bitfield_marks_the_order_dirty_and_the_next_pick_rebuilds_it() {
    let mut picker = with_counts(&[1, 2, 3], Strategy::RarestFirst);
    let mut rng = Rng::new(3);
    let all = Bitfield::full(3);
    assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(0));
    picker.add_peer(&field(3, &[0]));
    picker.add_peer(&field(3, &[0]));
    assert!(picker.order.borrow().dirty);
    assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(1));
    assert!(!picker.order.borrow().dirty);
    assert_consistent(&picker);
    picker.add_peer(&Bitfield::new(3)); // no pieces: nothing to rebuild
    assert!(!picker.order.borrow().dirty);
}

#[test]
fn removed_pieces_are_never_picked_until_restored() {
    for strategy in [
        Strategy::RarestFirst,
        Strategy::Sequential,
        Strategy::Random,
    ] {
        let mut picker = with_counts(&[1, 2, 2, 3], strategy);
        let mut rng = Rng::new(4);
        let all = Bitfield::full(4);
        picker.pick(&all, |_| true, &mut rng);
        picker.remove_piece(0);
        picker.remove_piece(2);
        picker.remove_piece(2); // twice: no effect
        assert_consistent(&picker);
        for _ in 0..40 {
            let pick = picker.pick(&all, |_| true, &mut rng).unwrap();
            assert!(pick == 1 || pick == 3, "{strategy:?}: {pick}");
        }
        picker.remove_piece(1);
        picker.remove_piece(3);
        assert_eq!(picker.pick(&all, |_| true, &mut rng), None);
        picker.add_piece(3); // still counted while removed
        assert_eq!(picker.availability(3), 4);
        picker.restore_piece(0);
        picker.restore_piece(0); // twice: no effect
        assert_consistent(&picker);
        assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(0));
        picker.add_piece(0);
        picker.restore_piece(3);
        assert_consistent(&picker);
    }
}

#[test]
fn sequential_takes_the_lowest_wanted_index() {
    // ((availability, peer has, wanted excludes, removed), expected)
    let cases: &[(Row, Option<u32>)] = &[
        ((&[1, 1, 1, 1, 1], &[1, 3, 4], &[1], &[]), Some(3)),
        ((&[1, 1, 1, 1, 1], &[0, 1, 2], &[], &[0]), Some(1)),
        ((&[1, 1, 1, 1, 1], &[0, 1, 2], &[], &[0, 1]), Some(2)),
        ((&[1, 1, 1, 1, 1], &[0, 1, 2], &[], &[0, 1, 2]), None),
        ((&[0, 1, 1, 9, 1], &[0, 3, 4], &[], &[]), Some(3)), // not availability 0
    ];
    for &((counts, has, excluded, removed), expected) in cases {
        let mut picker = with_counts(counts, Strategy::Sequential);
        for &p in removed {
            picker.remove_piece(p);
        }
        let has = field(counts.len() as u32, has);
        let mut rng = Rng::new(1);
        let pick = picker.pick(&has, |p| !excluded.contains(&p), &mut rng);
        assert_eq!(pick, expected, "{counts:?} {removed:?}");
    }
}

#[test]
fn sequential_cursor_follows_removals_and_restores() {
    let mut picker = with_counts(&[1; 6], Strategy::Sequential);
    let all = Bitfield::full(6);
    let mut rng = Rng::new(1);
    for p in [1, 0, 2, 4] {
        picker.remove_piece(p);
    }
    assert_eq!(picker.first_unremoved, 3);
    assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(3));
    picker.restore_piece(1);
    assert_eq!(picker.first_unremoved, 1);
    assert_eq!(picker.pick(&all, |_| true, &mut rng), Some(1));
}

#[test]
fn random_covers_every_candidate_regardless_of_rarity() {
    let mut picker = Picker::new(4, Strategy::Random);
    picker.add_peer(&field(4, &[0, 1, 2, 3]));
    picker.add_peer(&field(4, &[0, 1, 2]));
    let mut rng = Rng::new(4);
    let mut seen = [0u32; 4];
    for _ in 0..400 {
        seen[picker
            .pick(&Bitfield::full(4), |p| p != 1, &mut rng)
            .unwrap() as usize] += 1;
    }
    assert_eq!(seen[1], 0);
    assert!(seen[0] > 50 && seen[2] > 50 && seen[3] > 50, "{seen:?}");
}

#[test]
fn strategies_parse_from_their_option_names() {
    let cases = [
        ("rarest", Ok(Strategy::RarestFirst)),
        ("sequential", Ok(Strategy::Sequential)),
        ("random", Ok(Strategy::Random)),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<Strategy>(), expected);
    }
    assert!("fastest".parse::<Strategy>().is_err());
}

/// The naive model: counts, removed flags and the connected peers' sets.
struct Model {
    availability: Vec<u32>,
    removed: Vec<bool>,
    peers: Vec<Bitfield>,
}

fn random_field(len: u32, rng: &mut Rng) -> Bitfield {
    let density = rng.below(101);
    let mut b = Bitfield::new(len);
    for p in 0..len {
        if rng.below(100) < density {
            b.set(p);
        }
    }
    b
}

/// One random operation on both the picker and the model; for a pick,
/// checks the choice is a candidate of minimal availability.
fn step(picker: &mut Picker, model: &mut Model, len: u32, rng: &mut Rng) {
    match rng.below(10) {
        0 if model.peers.len() < 12 => {
            let has = random_field(len, rng);
            has.iter_ones()
                .for_each(|p| model.availability[p as usize] += 1);
            picker.add_peer(&has);
            model.peers.push(has);
        }
        1 if !model.peers.is_empty() => {
            let has = model.peers.swap_remove(rng.below(model.peers.len()));
            has.iter_ones()
                .for_each(|p| model.availability[p as usize] -= 1);
            picker.remove_peer(&has);
        }
        2..=4 if !model.peers.is_empty() => {
            let i = rng.below(model.peers.len());
            let piece = rng.below(len as usize) as u32;
            if model.peers[i].set(piece) {
                model.availability[piece as usize] += 1;
                picker.add_piece(piece);
            }
        }
        5 => {
            let piece = rng.below(len as usize);
            model.removed[piece] = true;
            picker.remove_piece(piece as u32);
        }
        6 => {
            let piece = rng.below(len as usize);
            model.removed[piece] = false;
            picker.restore_piece(piece as u32);
        }
        _ => check_pick(picker, model, len, rng),
    }
}

fn check_pick(picker: &Picker, model: &Model, len: u32, rng: &mut Rng) {
    let has = random_field(len, rng);
    let excluded = random_field(len, rng);
    let wanted = |p: u32| !excluded.has(p);
    let candidates: Vec<u32> = (0..len)
        .filter(|&p| has.has(p) && wanted(p))
        .filter(|&p| !model.removed[p as usize] && model.availability[p as usize] > 0)
        .collect();
    let rarest = candidates
        .iter()
        .map(|&p| model.availability[p as usize])
        .min();
    match picker.pick(&has, wanted, rng) {
        Some(p) => {
            assert!(candidates.contains(&p), "{p} not a candidate");
            assert_eq!(Some(model.availability[p as usize]), rarest, "{p}");
        }
        None => assert!(candidates.is_empty(), "missed {candidates:?}"),
    }
    assert_consistent(picker);
}

#[test]
fn picks_match_a_naive_model_under_random_operations() {
    for (seed, len) in [(1, 1), (2, 7), (3, 40), (4, 200)] {
        let mut rng = Rng::new(seed);
        let mut picker = Picker::new(len, Strategy::RarestFirst);
        let mut model = Model {
            availability: vec![0; len as usize],
            removed: vec![false; len as usize],
            peers: Vec::new(),
        };
        for _ in 0..3000 {
            step(&mut picker, &mut model, len, &mut rng);
            for p in 0..len {
                assert_eq!(picker.availability(p), model.availability[p as usize]);
            }
        }
    }
}
