//! The MPTCP options of RFC 8684 that matter to an observer, and the
//! values derived from the keys.

use sha2::{Digest, Sha256};

/// TCP option kind of every MPTCP option.
const TCPOPT_MPTCP: u8 = 30;

const SUBTYPE_CAPABLE: u8 = 0;
const SUBTYPE_JOIN: u8 = 1;
const SUBTYPE_DSS: u8 = 2;

const DSS_DATA_ACK: u8 = 0x01;
const DSS_ACK64: u8 = 0x02;
const DSS_MAPPING: u8 = 0x04;
const DSS_DSN64: u8 = 0x08;
const DSS_DATA_FIN: u8 = 0x10;

/// A data-level sequence number as the wire carries it: the full 64 bits,
/// or only their low 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireDsn {
    pub value: u64,
    pub is_64: bool,
}

/// A DSS data sequence mapping: `len` bytes of the data stream from `dsn`
/// travel at subflow sequence numbers from `subflow_seq` (relative to the
/// subflow's initial sequence number).  With `data_fin` the last of the
/// `len` is the DATA_FIN, which has no payload byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub dsn: WireDsn,
    pub subflow_seq: u32,
    pub len: u16,
    pub data_fin: bool,
}

impl Mapping {
    /// Payload bytes the mapping covers.
    pub fn payload_len(&self) -> u32 {
        u32::from(self.len) - u32::from(self.data_fin && self.len > 0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MptcpOption {
    /// MP_CAPABLE.  The first key is the sender's, the second (only on the
    /// third ACK of the handshake and after it) the receiver's.  `data_len`
    /// is set when it carries the first data (RFC 8684 v1): that data then
    /// starts at the sender's IDSN + 1 and subflow sequence 1.
    Capable {
        version: u8,
        sender_key: Option<u64>,
        receiver_key: Option<u64>,
        data_len: Option<u16>,
    },
    /// MP_JOIN on a SYN: the token of the receiver's key.
    JoinSyn { token: u32 },
    /// MP_JOIN on the SYN/ACK or ACK.
    Join,
    /// DSS: a data ACK, a mapping, or both.
    Dss {
        data_ack: Option<WireDsn>,
        mapping: Option<Mapping>,
    },
    /// ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST...
    Other { subtype: u8 },
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// The MPTCP options among raw TCP option bytes.  Malformed options end
/// the walk; nothing panics.
pub fn parse_options(mut opts: &[u8]) -> Vec<MptcpOption> {
    let mut out = Vec::new();
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => {
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        let len = match opts.get(1) {
            Some(&l) if l >= 2 && usize::from(l) <= opts.len() => usize::from(l),
            _ => break,
        };
        if kind == TCPOPT_MPTCP {
            if let Some(opt) = parse_mptcp(&opts[..len]) {
                out.push(opt);
            }
        }
        opts = &opts[len..];
    }
    out
}

/// One MPTCP option, `opt` starting at its kind byte.
fn parse_mptcp(opt: &[u8]) -> Option<MptcpOption> {
    let subtype = opt.get(2)? >> 4;
    match subtype {
        SUBTYPE_CAPABLE => {
            let version = opt[2] & 0x0f;
            let key = |at: usize| opt.get(at..at + 8).map(be);
            let data_len = opt.get(20..22).map(be).map(|v| v as u16);
            Some(MptcpOption::Capable {
                version,
                sender_key: key(4),
                receiver_key: key(12),
                data_len,
            })
        }
        SUBTYPE_JOIN if opt.len() == 12 => Some(MptcpOption::JoinSyn {
            token: be(opt.get(4..8)?) as u32,
        }),
        SUBTYPE_JOIN => Some(MptcpOption::Join),
        SUBTYPE_DSS => parse_dss(opt),
        _ => Some(MptcpOption::Other { subtype }),
    }
}

fn parse_dss(opt: &[u8]) -> Option<MptcpOption> {
    let flags = *opt.get(3)?;
    let mut at = 4;
    let mut take = |n: usize| -> Option<u64> {
        let v = be(opt.get(at..at + n)?);
        at += n;
        Some(v)
    };
    let data_ack = if flags & DSS_DATA_ACK != 0 {
        let is_64 = flags & DSS_ACK64 != 0;
        Some(WireDsn {
            value: take(if is_64 { 8 } else { 4 })?,
            is_64,
        })
    } else {
        None
    };
    let mapping = if flags & DSS_MAPPING != 0 {
        let is_64 = flags & DSS_DSN64 != 0;
        let dsn = WireDsn {
            value: take(if is_64 { 8 } else { 4 })?,
            is_64,
        };
        let subflow_seq = take(4)? as u32;
        let len = take(2)? as u16;
        Some(Mapping {
            dsn,
            subflow_seq,
            len,
            data_fin: flags & DSS_DATA_FIN != 0,
        })
    } else {
        None
    };
    Some(MptcpOption::Dss { data_ack, mapping })
}

fn key_digest(key: u64) -> [u8; 32] {
    Sha256::digest(key.to_be_bytes()).into()
}

/// The token of a key: the most significant 32 bits of SHA-256(BE64(key)).
pub fn token(key: u64) -> u32 {
    be(&key_digest(key)[..4]) as u32
}

/// The initial data sequence number of the sender of `key`: the least
/// significant 64 bits of SHA-256(BE64(key)).  Its first data byte has
/// DSN IDSN + 1 (the SYN takes the first number, as in TCP).
pub fn idsn(key: u64) -> u64 {
    be(&key_digest(key)[24..])
}

/// The scrambler seed of the direction from `sender_key` to
/// `receiver_key`, exactly as the kernel module computes it.
pub fn seed(sender_key: u64, receiver_key: u64) -> [u8; scramble_core::SEED_LEN] {
    scramble_core::seed_with(|m| Sha256::digest(m).into(), sender_key, receiver_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dss_with_64_bit_ack_and_mapping() {
        // NOP NOP, then DSS: A a M m, ack, dsn, ssn, len, checksum.
        let mut opts = vec![1, 1, 30, 28, 0x20, 0x0f];
        opts.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        opts.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        opts.extend_from_slice(&9u32.to_be_bytes());
        opts.extend_from_slice(&1400u16.to_be_bytes());
        opts.extend_from_slice(&[0xab, 0xcd]);
        opts[3] = (opts.len() - 2) as u8;
        assert_eq!(
            parse_options(&opts),
            vec![MptcpOption::Dss {
                data_ack: Some(WireDsn {
                    value: 0x1122_3344_5566_7788,
                    is_64: true
                }),
                mapping: Some(Mapping {
                    dsn: WireDsn {
                        value: 0x0102_0304_0506_0708,
                        is_64: true
                    },
                    subflow_seq: 9,
                    len: 1400,
                    data_fin: false,
                }),
            }]
        );
    }

    #[test]
    fn dss_with_32_bit_numbers_and_data_fin() {
        let mut opts = vec![30, 0, 0x20, 0x15];
        opts.extend_from_slice(&7u32.to_be_bytes());
        opts.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        opts.extend_from_slice(&0u32.to_be_bytes());
        opts.extend_from_slice(&1u16.to_be_bytes());
        opts[1] = opts.len() as u8;
        let parsed = parse_options(&opts);
        let MptcpOption::Dss {
            data_ack,
            mapping: Some(m),
        } = parsed[0]
        else {
            panic!("not a DSS mapping: {parsed:?}");
        };
        assert_eq!(
            data_ack,
            Some(WireDsn {
                value: 7,
                is_64: false
            })
        );
        assert_eq!(
            m.dsn,
            WireDsn {
                value: 0xdead_beef,
                is_64: false
            }
        );
        assert!(m.data_fin);
        assert_eq!(m.payload_len(), 0);
    }

    #[test]
    fn capable_ack_carries_both_keys() {
        let mut opts = vec![30, 20, 0x01, 0x81];
        opts.extend_from_slice(&1u64.to_be_bytes());
        opts.extend_from_slice(&2u64.to_be_bytes());
        assert_eq!(
            parse_options(&opts),
            vec![MptcpOption::Capable {
                version: 1,
                sender_key: Some(1),
                receiver_key: Some(2),
                data_len: None
            }]
        );
    }

    #[test]
    fn truncated_and_garbage_options_do_not_panic() {
        for opts in [
            &[30u8][..],
            &[30, 40, 0x20],
            &[30, 2],
            &[5, 0],
            &[30, 8, 0x20, 0x0f, 1, 2],
        ] {
            let _ = parse_options(opts);
        }
    }

    #[test]
    fn token_and_idsn_split_the_key_digest() {
        // SHA-256 of eight zero bytes is af5570f5a1810b7a...e4cd1d3f05.
        let d = key_digest(0);
        assert_eq!(token(0), u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
        assert_eq!(idsn(0).to_be_bytes(), d[24..]);
        assert_eq!(token(0), 0xaf55_70f5);
    }
}
