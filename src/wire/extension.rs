//! The extension protocol handshake (BEP 10): how two peers tell each other
//! which extensions they speak and how many requests they will queue.
//!
//! Layer 0: pure. The handshake carries `reqq`, the number of outstanding
//! REQUESTs a peer accepts (without it a peer cannot know our queue limit,
//! and requests past it would vanish), and the `m` dictionary that maps
//! extension names to the message ids each side chose. pollen speaks two
//! extension messages, BEP 9's `ut_metadata` ([`UT_METADATA_ID`]), and
//! announces `metadata_size` when it has the info dictionary to serve, and
//! BEP 11's `ut_pex` ([`UT_PEX_ID`], not for private torrents); it sends
//! its listen port as `p` so that a peer it dialled can list it.
//! Each side sends an extension message under the id the *receiver* chose.

use crate::bencode::{self, Dict, Limits, Value};

/// The extended message id of the handshake itself (BEP 10).
pub const HANDSHAKE_ID: u8 = 0;

/// The id under which we receive `ut_metadata` messages (BEP 9), announced
/// in our `m` dictionary. Any non-zero id would do; 1 is what most clients
/// pick for their first extension.
pub const UT_METADATA_ID: u8 = 1;

/// The name of the metadata extension in the `m` dictionary (BEP 9).
const UT_METADATA: &[u8] = b"ut_metadata";

/// The id under which we receive `ut_pex` messages (BEP 11), announced in
/// our `m` dictionary unless the torrent is private (BEP 27).
pub const UT_PEX_ID: u8 = 2;

/// What a peer said in its extension handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtHandshake {
    /// How many outstanding requests it queues (`reqq`).
    pub reqq: Option<u32>,
    /// Its client name and version (`v`), as it sent it.
    pub client: Option<String>,
    /// The id it receives `ut_metadata` messages under (`m.ut_metadata`),
    /// `None` if absent or not an integer in 0..=255. `Some(0)` means it
    /// turns the extension off: BEP 10's `m` is additive, so a repeated
    /// handshake without the key changes nothing, and 0 disables it.
    pub ut_metadata: Option<u8>,
    /// The size of its info dictionary in bytes (`metadata_size`, BEP 9),
    /// if it sent a positive one. Not checked against any cap here: the
    /// metadata fetch does that.
    pub metadata_size: Option<u64>,
    /// The id it receives `ut_pex` messages under (`m.ut_pex`, BEP 11),
    /// read like [`ExtHandshake::ut_metadata`] (`Some(0)` turns it off).
    pub ut_pex: Option<u8>,
    /// The port it listens on (`p`), if it sent one in 1..=65535: how an
    /// incoming peer tells us where it can be reached.
    pub listen_port: Option<u16>,
}

/// What our handshake offers besides `reqq`, the client name and
/// `ut_metadata` ([`our_handshake_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MoreOffers {
    /// Offer `ut_pex` under [`UT_PEX_ID`] (never for a private torrent).
    pub ut_pex: bool,
    /// Our listen port, sent as `p`.
    pub listen_port: Option<u16>,
}

/// Longest client name kept from a peer (for logs and the TUI).
const MAX_CLIENT_NAME_CHARS: usize = 64;

impl ExtHandshake {
    /// Reads a peer's extension handshake payload (a bencoded dictionary).
    /// Unknown keys are ignored; malformed ones are treated as absent.
    pub fn parse(payload: &[u8]) -> Result<ExtHandshake, bencode::DecodeError> {
        let value = bencode::decode(payload, Limits::MESSAGE)?;
        let Some(dict) = value.as_dict() else {
            return Ok(ExtHandshake::default());
        };
        Ok(ExtHandshake {
            reqq: dict
                .get_int(b"reqq")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0),
            client: dict.get_bytes(b"v").map(|v| {
                String::from_utf8_lossy(v)
                    .chars()
                    .take(MAX_CLIENT_NAME_CHARS)
                    .collect()
            }),
            ut_metadata: dict
                .get_dict(b"m")
                .and_then(|m| m.get_int(UT_METADATA))
                .and_then(|n| u8::try_from(n).ok()),
            metadata_size: dict
                .get_int(b"metadata_size")
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0),
            ut_pex: dict
                .get_dict(b"m")
                .and_then(|m| m.get_int(crate::pex::UT_PEX))
                .and_then(|n| u8::try_from(n).ok()),
            listen_port: dict
                .get_int(b"p")
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n > 0),
        })
    }
}

/// What our extension handshake says about `ut_metadata` (BEP 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataOffer {
    /// Nothing: no `ut_metadata` in `m` (a private torrent).
    None,
    /// `m.ut_metadata` without `metadata_size`: we speak the extension
    /// but have no metadata yet (a magnet link, fetching it).
    Asking,
    /// `m.ut_metadata` and `metadata_size`: the byte length of the info
    /// dictionary we serve.
    Serving(usize),
}

/// Our extension handshake payload: our queue size, our name, and what we
/// say about `ut_metadata` (under [`UT_METADATA_ID`]).
pub fn our_handshake(reqq: usize, client: &str, metadata: MetadataOffer) -> Vec<u8> {
    our_handshake_with(reqq, client, metadata, MoreOffers::default())
}

/// [`our_handshake`] with `more`: `m.ut_pex` = [`UT_PEX_ID`] when offered,
/// and our listen port as `p`.
pub fn our_handshake_with(
    reqq: usize,
    client: &str,
    metadata: MetadataOffer,
    more: MoreOffers,
) -> Vec<u8> {
    let reqq = i64::try_from(reqq).unwrap_or(i64::MAX);
    let mut extensions = Vec::new();
    let mut entries = vec![
        (&b"reqq"[..], Value::Int(reqq)),
        (b"v", Value::Bytes(client.as_bytes())),
    ];
    if metadata != MetadataOffer::None {
        extensions.push((UT_METADATA, Value::Int(i64::from(UT_METADATA_ID))));
    }
    if let MetadataOffer::Serving(len) = metadata {
        if let Ok(len) = i64::try_from(len) {
            entries.push((b"metadata_size", Value::Int(len)));
        }
    }
    if more.ut_pex {
        extensions.push((crate::pex::UT_PEX, Value::Int(i64::from(UT_PEX_ID))));
    }
    if let Some(port) = more.listen_port {
        entries.push((b"p", Value::Int(i64::from(port))));
    }
    entries.push((b"m", Value::Dict(Dict::new(extensions))));
    bencode::encode(&Value::Dict(Dict::new(entries)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_handshake_round_trips() {
        let payload = our_handshake(2000, "pollen 0.1.0", MetadataOffer::None);
        assert_eq!(payload, b"d1:mde4:reqqi2000e1:v12:pollen 0.1.0e");
        let parsed = ExtHandshake::parse(&payload).unwrap();
        assert_eq!(parsed.reqq, Some(2000));
        assert_eq!(parsed.client.as_deref(), Some("pollen 0.1.0"));
        assert_eq!(parsed.ut_metadata, None);
        assert_eq!(parsed.metadata_size, None);
    }

    #[test]
    fn a_handshake_with_metadata_offers_ut_metadata_and_its_size() {
        let payload = our_handshake(2000, "pollen 0.1.0", MetadataOffer::Serving(31_337));
        assert_eq!(
            payload,
            &b"d1:md11:ut_metadatai1ee13:metadata_sizei31337e4:reqqi2000e1:v12:pollen 0.1.0e"[..]
        );
        let parsed = ExtHandshake::parse(&payload).unwrap();
        assert_eq!(parsed.ut_metadata, Some(UT_METADATA_ID));
        assert_eq!(parsed.metadata_size, Some(31_337));
    }

    #[test]
    fn a_peers_ut_metadata_id_is_read_from_its_m_dictionary() {
        let lt = b"d1:md11:lt_donthavei7e6:ut_pexi1e11:ut_metadatai3ee13:metadata_sizei9000ee";
        let parsed = ExtHandshake::parse(lt).unwrap();
        assert_eq!(parsed.ut_metadata, Some(3));
        assert_eq!(parsed.metadata_size, Some(9000));
    }

    #[test]
    fn hostile_ut_metadata_ids_and_sizes_are_treated_as_absent() {
        let off = ExtHandshake::parse(b"d1:md11:ut_metadatai0eee").unwrap();
        assert_eq!(off.ut_metadata, Some(0), "0 turns it off (BEP 10)");
        for payload in [
            &b"d1:md11:ut_metadatai256eee"[..],
            b"d1:md11:ut_metadatai-1eee",
            b"d1:md11:ut_metadata1:xee",
            b"d1:mi5e13:metadata_sizei-4ee",
            b"d1:mle13:metadata_sizei0ee",
            b"d11:ut_metadatai1e13:metadata_size3:abce",
        ] {
            let parsed = ExtHandshake::parse(payload).unwrap();
            assert_eq!(parsed.ut_metadata, None, "{payload:?}");
            assert_eq!(parsed.metadata_size, None, "{payload:?}");
        }
    }

    #[test]
    fn a_handshake_may_offer_ut_pex_and_our_listen_port() {
        let more = MoreOffers {
            ut_pex: true,
            listen_port: Some(6881),
        };
        let payload = our_handshake_with(2000, "pollen", MetadataOffer::Serving(100), more);
        assert_eq!(
            payload,
            &b"d1:md11:ut_metadatai1e6:ut_pexi2ee13:metadata_sizei100e1:pi6881e4:reqqi2000e1:v6:pollene"[..]
        );
        let parsed = ExtHandshake::parse(&payload).unwrap();
        assert_eq!(parsed.ut_pex, Some(UT_PEX_ID));
        assert_eq!(parsed.listen_port, Some(6881));
        assert_eq!(parsed.ut_metadata, Some(UT_METADATA_ID));
        let none = ExtHandshake::parse(&our_handshake(1, "x", MetadataOffer::None)).unwrap();
        assert_eq!((none.ut_pex, none.listen_port), (None, None));
    }

    #[test]
    fn hostile_ut_pex_ids_and_ports_are_treated_as_absent() {
        for payload in [
            &b"d1:md6:ut_pexi256ee1:pi0ee"[..],
            b"d1:md6:ut_pexi-1ee1:pi65536ee",
            b"d1:md6:ut_pex1:2e1:p4:6881e",
            b"d6:ut_pexi2e1:pi-1ee",
        ] {
            let parsed = ExtHandshake::parse(payload).unwrap();
            assert_eq!(parsed.ut_pex, None, "{payload:?}");
            assert_eq!(parsed.listen_port, None, "{payload:?}");
        }
        let lt = ExtHandshake::parse(b"d1:md6:ut_pexi1ee1:pi65535ee").unwrap();
        assert_eq!((lt.ut_pex, lt.listen_port), (Some(1), Some(65535)));
    }

    #[test]
    fn odd_values_are_ignored_not_fatal() {
        let parsed = ExtHandshake::parse(b"d4:reqqi-5e1:vi3ee").unwrap();
        assert_eq!(parsed, ExtHandshake::default());
        assert_eq!(ExtHandshake::parse(b"le").unwrap(), ExtHandshake::default());
        assert!(ExtHandshake::parse(b"d4:reqq").is_err());
        let huge = ExtHandshake::parse(b"d4:reqqi99999999999e1:md6:ut_pexi1eee").unwrap();
        assert_eq!(huge.reqq, None);
    }
}
