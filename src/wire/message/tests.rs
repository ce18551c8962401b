//! Specs of the peer wire messages: every message round-trips, the BEP 3
//! layout byte for byte, and decoding refuses what is too long, too short or
//! of the wrong length from the header alone. Its helpers are shared with
//! other modules' specs.
//!
//! Layer 0, test-only: bytes in, values out.

// `pub(super)` so the stream test in `wire` can share `every_message`.
use super::*;

const PIECES: u32 = 30;

fn limits() -> FrameLimits {
    FrameLimits::for_pieces(PIECES)
}

/// One of every message, valid under `limits()`.
pub(in crate::wire) fn every_message() -> Vec<Message<'static>> {
    let block = BlockRequest {
        piece: 7,
        begin: 16384,
        len: 16384,
    };
    vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have { piece: 0x0102_0304 },
        Message::Bitfield(&[0xFF, 0x00, 0xA5, 0b1111_1100]),
        Message::Request(block),
        Message::Piece {
            piece: 3,
            begin: 32768,
            data: b"some block data",
        },
        Message::Piece {
            piece: 4,
            begin: 0,
            data: &[0x55; 16 * 1024],
        },
        Message::Cancel(block),
        Message::Port(6881),
        Message::Suggest { piece: 12 },
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block),
        Message::AllowedFast { piece: 29 },
        Message::Extended {
            id: 0,
            payload: b"d1:md6:ut_pexi1eee",
        },
        Message::Extended {
            id: 3,
            payload: b"",
        },
        Message::Unknown {
            id: 21,
            payload: b"hash request",
        },
        Message::Unknown {
            id: 0xFF,
            payload: b"",
        },
    ]
}

fn encoded(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

/// A frame header: length prefix and id, with no payload bytes yet.
fn header(len: u32, id: u8) -> Vec<u8> {
    let mut out = len.to_be_bytes().to_vec();
    out.push(id);
    out
}

#[test]
fn every_message_round_trips_and_consumes_its_frame() {
    for message in every_message() {
        let bytes = encoded(&message);
        assert_eq!(
            decode_frame(&bytes, &limits()),
            Ok(Some((message, bytes.len()))),
            "{}",
            message.name()
        );
    }
}

#[test]
fn encode_writes_the_bep3_layout() {
    assert_eq!(encoded(&Message::KeepAlive), [0, 0, 0, 0]);
    assert_eq!(encoded(&Message::Interested), [0, 0, 0, 1, 2]);
    assert_eq!(
        encoded(&Message::Have { piece: 258 }),
        [0, 0, 0, 5, 4, 0, 0, 1, 2]
    );
    assert_eq!(
        encoded(&Message::Request(BlockRequest {
            piece: 1,
            begin: 2,
            len: 3
        })),
        [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
    );
    assert_eq!(encoded(&Message::Port(0x1AE1)), [0, 0, 0, 3, 9, 0x1A, 0xE1]);
    assert_eq!(
        encoded(&Message::Extended {
            id: 2,
            payload: b"de"
        }),
        [0, 0, 0, 4, 20, 2, b'd', b'e']
    );
}

#[test]
fn piece_header_then_data_equals_an_encoded_piece() {
    let data = b"0123456789";
    let mut out = Vec::new();
    encode_piece_header(5, 16384, data.len(), &mut out);
    assert_eq!(out, [0, 0, 0, 19, 7, 0, 0, 0, 5, 0, 0, 64, 0]);
    out.extend_from_slice(data);
    let piece = Message::Piece {
        piece: 5,
        begin: 16384,
        data,
    };
    assert_eq!(out, encoded(&piece));
}

#[test]
fn every_truncation_is_incomplete_not_an_error() {
    for message in every_message() {
        let bytes = encoded(&message);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_frame(&bytes[..cut], &limits()),
                Ok(None),
                "{} cut at {cut}",
                message.name()
            );
        }
    }
}

#[test]
fn decode_rejects_oversized_length_from_the_prefix_alone() {
    let max = limits().max_len();
    for len in [max + 1, 1024 * 1024 + 9, u32::MAX] {
        let err = decode_frame(&len.to_be_bytes(), &limits()).unwrap_err();
        assert_eq!(err, WireError::FrameTooLong { len, max });
    }
    assert_eq!(
        decode_frame(&(1024 * 1024 + 9u32).to_be_bytes(), &limits())
            .unwrap_err()
            .to_string(),
        "frame of 1048585 bytes exceeds the 65538-byte limit for any message"
    );
    assert_eq!(decode_frame(&max.to_be_bytes(), &limits()), Ok(None));
}

#[test]
fn decode_rejects_wrong_exact_lengths_from_the_header() {
    let cases = [
        (id::CHOKE, 1),
        (id::UNCHOKE, 1),
        (id::INTERESTED, 1),
        (id::NOT_INTERESTED, 1),
        (id::HAVE_ALL, 1),
        (id::HAVE_NONE, 1),
        (id::HAVE, 5),
        (id::SUGGEST_PIECE, 5),
        (id::ALLOWED_FAST, 5),
        (id::REQUEST, 13),
        (id::CANCEL, 13),
        (id::REJECT_REQUEST, 13),
        (id::PORT, 3),
    ];
    for (id, expected) in cases {
        for len in [expected - 1, expected + 1, expected + 1000] {
            if len == 0 {
                continue; // a keep-alive
            }
            assert_eq!(
                decode_frame(&header(len, id), &limits()),
                Err(WireError::WrongLength { id, len, expected }),
                "id {id} len {len}"
            );
        }
    }
    assert_eq!(
        decode_frame(&header(7, id::HAVE), &limits())
            .unwrap_err()
            .to_string(),
        "HAVE frame has length 7, expected 5"
    );
}

#[test]
fn decode_rejects_bitfield_of_the_wrong_length() {
    for len in [1, 4, 6, 100] {
        assert_eq!(
            decode_frame(&header(len, id::BITFIELD), &limits()),
            Err(WireError::BitfieldLength {
                len,
                expected: 5,
                piece_count: PIECES
            })
        );
    }
    assert_eq!(
        decode_frame(&header(3, id::BITFIELD), &limits())
            .unwrap_err()
            .to_string(),
        "BITFIELD frame has length 3, expected 5 for 30 pieces"
    );
}

#[test]
fn decode_rejects_piece_bigger_than_a_block_from_the_header() {
    let len = 9 + 16 * 1024 + 1;
    let err = decode_frame(&header(len, id::PIECE), &limits()).unwrap_err();
    assert_eq!(
        err,
        WireError::TooLong {
            id: id::PIECE,
            len,
            max: 16393
        }
    );
    assert_eq!(
        err.to_string(),
        "frame of 16394 bytes exceeds the 16393-byte limit for PIECE"
    );
}

#[test]
fn decode_rejects_extended_and_unknown_above_their_caps() {
    let over_extended = 2 + FrameLimits::MAX_EXTENDED_LEN + 1;
    assert!(matches!(
        decode_frame(&header(over_extended - 1, id::EXTENDED), &limits()),
        Ok(None)
    ));
    // Larger than any message at all, so the prefix check fires first.
    assert!(matches!(
        decode_frame(&header(over_extended, id::EXTENDED), &limits()),
        Err(WireError::FrameTooLong { .. })
    ));

    let over_unknown = 1 + FrameLimits::MAX_UNKNOWN_LEN + 1;
    let err = decode_frame(&header(over_unknown, 42), &limits()).unwrap_err();
    assert_eq!(
        err,
        WireError::TooLong {
            id: 42,
            len: over_unknown,
            max: over_unknown - 1
        }
    );
    assert_eq!(
        err.to_string(),
        "frame of 16386 bytes exceeds the 16385-byte limit for unknown message id 42"
    );
    assert_eq!(
        decode_frame(&header(over_unknown - 1, 42), &limits()),
        Ok(None)
    );
}

#[test]
fn decode_rejects_piece_and_extended_too_short_for_their_header() {
    let short_piece = [0, 0, 0, 5, id::PIECE, 0, 0, 0, 1];
    let err = decode_frame(&short_piece, &limits()).unwrap_err();
    assert_eq!(
        err,
        WireError::TooShort {
            id: id::PIECE,
            len: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "PIECE frame has length 5, too short for its fields"
    );

    let short_extended = [0, 0, 0, 1, id::EXTENDED];
    assert_eq!(
        decode_frame(&short_extended, &limits()),
        Err(WireError::TooShort {
            id: id::EXTENDED,
            len: 1
        })
    );
}

#[test]
fn decode_takes_one_frame_and_leaves_the_rest() {
    let mut bytes = encoded(&Message::Have { piece: 1 });
    bytes.extend_from_slice(&encoded(&Message::Choke));
    assert_eq!(
        decode_frame(&bytes, &limits()),
        Ok(Some((Message::Have { piece: 1 }, 9)))
    );
}

#[test]
fn max_frame_len_is_the_largest_message_allowed() {
    // EXTENDED is the largest for small torrents...
    assert_eq!(limits().max_frame_len(), 2 + 64 * 1024);
    // ...and BITFIELD for huge ones (libtorrent's cap of 2,097,152 pieces).
    assert_eq!(
        FrameLimits::for_pieces(2_097_152).max_frame_len(),
        1 + 262_144
    );
    let tight = FrameLimits {
        piece_count: 8,
        piece_count_known: true,
        max_block_len: 0,
        max_extended_len: 0,
        max_unknown_len: 0,
    };
    assert_eq!(tight.max_frame_len(), 13);
}

#[test]
fn names_and_ids_follow_the_beps() {
    assert_eq!(Message::KeepAlive.id(), None);
    assert_eq!(Message::KeepAlive.name(), "KEEP_ALIVE");
    assert_eq!(Message::NotInterested.name(), "NOT_INTERESTED");
    assert_eq!(Message::Port(1).id(), Some(9));
    assert_eq!(Message::AllowedFast { piece: 0 }.id(), Some(0x11));
    let extended = Message::Extended {
        id: 5,
        payload: b"",
    };
    assert_eq!((extended.id(), extended.name()), (Some(20), "EXTENDED"));
    let unknown = Message::Unknown {
        id: 99,
        payload: b"",
    };
    assert_eq!((unknown.id(), unknown.name()), (Some(99), "UNKNOWN"));
}

#[test]
fn before_metadata_a_bitfield_of_any_length_up_to_the_ceiling_decodes() {
    let limits = FrameLimits::before_metadata();
    for len in [1usize, 2, 100] {
        let mut frame = u32::try_from(1 + len).unwrap().to_be_bytes().to_vec();
        frame.push(5);
        frame.extend(std::iter::repeat_n(0xff, len));
        let (message, used) = decode_frame(&frame, &limits).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(message, Message::Bitfield(&frame[5..]));
    }
    let too_long = limits.piece_count.div_ceil(8) + 2;
    let header = too_long.to_be_bytes();
    let frame = [&header[..], &[5u8][..]].concat();
    assert!(decode_frame(&frame, &limits).is_err());
}

#[test]
fn exactly_the_five_bep6_messages_belong_to_the_fast_extension() {
    let block = BlockRequest {
        piece: 1,
        begin: 0,
        len: 16384,
    };
    let fast = [
        Message::HaveAll,
        Message::HaveNone,
        Message::Reject(block),
        Message::AllowedFast { piece: 1 },
        Message::Suggest { piece: 1 },
    ];
    assert!(fast.iter().all(Message::is_fast_extension));
    let others = [
        Message::KeepAlive,
        Message::Choke,
        Message::Have { piece: 1 },
        Message::Bitfield(&[0xff]),
        Message::Request(block),
        Message::Cancel(block),
        Message::Port(6881),
    ];
    assert!(!others.iter().any(Message::is_fast_extension));
}
