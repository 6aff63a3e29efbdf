//! BGP-4 messages (RFC 4271 section 4), sans I/O: [`decode`] takes one
//! message off the front of a byte buffer, [`encode`] writes one. OPEN
//! carries the capabilities this speaker uses (multiprotocol IPv4 unicast,
//! route refresh (RFC 2918), four-octet AS numbers (RFC 6793)); UPDATE
//! carries IPv4 NLRI and withdrawals with ORIGIN, AS_PATH, NEXT_HOP,
//! MULTI_EXIT_DISC, LOCAL_PREF and COMMUNITIES (RFC 1997). Other optional attributes are skipped
//! (and not passed on); a malformed message gives the NOTIFICATION RFC
//! 4271 section 6 names for it. Every read is bounds-checked ([`Reader`]):
//! no input makes the decoder panic (the proptests below).

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

pub const HEADER_LEN: usize = 19;
pub const MAX_LEN: usize = 4096;
/// The two-octet AS a four-octet speaker puts in OPEN when its own does
/// not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;
pub const BGP_PORT: u16 = 179;

const OPEN: u8 = 1;
const UPDATE: u8 = 2;
const NOTIFICATION: u8 = 3;
const KEEPALIVE: u8 = 4;
const ROUTE_REFRESH: u8 = 5;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_FOUR_OCTET_AS: u8 = 65;

const ATTR_ORIGIN: u8 = 1;
const ATTR_AS_PATH: u8 = 2;
const ATTR_NEXT_HOP: u8 = 3;
const ATTR_MED: u8 = 4;
const ATTR_LOCAL_PREF: u8 = 5;
const ATTR_COMMUNITIES: u8 = 8;
const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_EXTENDED: u8 = 0x10;

const AS_SET: u8 = 1;
const AS_SEQUENCE: u8 = 2;

/// NOTIFICATION error codes and subcodes (RFC 4271 4.5, RFC 4486).
pub mod error {
    pub const HEADER: u8 = 1;
    pub const NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_LENGTH: u8 = 2;
    pub const BAD_TYPE: u8 = 3;
    pub const OPEN: u8 = 2;
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_ID: u8 = 3;
    pub const UNSUPPORTED_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD: u8 = 6;
    pub const UPDATE: u8 = 3;
    pub const MALFORMED_ATTRIBUTES: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const INVALID_NETWORK: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
    pub const HOLD_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMIN_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMIN_RESET: u8 = 4;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    /// RFC 2918: (AFI, SAFI) to send again.
    RouteRefresh(u16, u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The four-octet AS when the capability carries one, else My AS.
    pub asn: u32,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub four_octet_as: bool,
    pub route_refresh: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl Origin {
    /// `i`, `e`, `?` as `show ip bgp` writes it.
    pub fn code(self) -> char {
        match self {
            Origin::Igp => 'i',
            Origin::Egp => 'e',
            Origin::Incomplete => '?',
        }
    }
}

/// One AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Sequence(Vec<u32>),
    Set(Vec<u32>),
}

/// The path attributes this speaker reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub origin: Origin,
    pub as_path: Vec<Segment>,
    pub next_hop: Ipv4Addr,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// RFC 1997 communities, in the order received.
    pub communities: Vec<u32>,
}

impl Attributes {
    /// The path length best-path selection compares: an AS_SET counts one
    /// (RFC 4271 9.1.2.2 a).
    pub fn path_length(&self) -> usize {
        (self.as_path.iter())
            .map(|s| match s {
                Segment::Sequence(ases) => ases.len(),
                Segment::Set(_) => 1,
            })
            .sum()
    }

    /// The neighbouring AS: the first of the path's first sequence.
    pub fn first_as(&self) -> Option<u32> {
        match self.as_path.first() {
            Some(Segment::Sequence(ases)) => ases.first().copied(),
            _ => None,
        }
    }

    pub fn contains_as(&self, asn: u32) -> bool {
        (self.as_path.iter()).any(|s| match s {
            Segment::Sequence(a) | Segment::Set(a) => a.contains(&asn),
        })
    }

    /// `65001 65002 {65003,65004}` as `show ip bgp` writes it.
    pub fn path_text(&self) -> String {
        let words: Vec<String> = (self.as_path.iter())
            .map(|s| match s {
                Segment::Sequence(a) => join(a, " "),
                Segment::Set(a) => format!("{{{}}}", join(a, ",")),
            })
            .collect();
        words.join(" ")
    }
}

fn join(ases: &[u32], separator: &str) -> String {
    let words: Vec<String> = ases.iter().map(u32::to_string).collect();
    words.join(separator)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Net>,
    /// Present when `nlri` is (the message may carry them without NLRI too).
    pub attributes: Option<Attributes>,
    pub nlri: Vec<Ipv4Net>,
    /// Its path attributes were malformed: its routes are withdrawn
    /// instead (RFC 7606's treat-as-withdraw), for this reason.
    pub treated_as_withdraw: Option<Notification>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    pub fn with_data(code: u8, subcode: u8, data: &[u8]) -> Notification {
        Notification {
            code,
            subcode,
            data: data.to_vec(),
        }
    }

    /// Its codes in words, for `show ip bgp neighbors` and the log.
    pub fn describe(&self) -> String {
        let code = match self.code {
            error::HEADER => "message header error",
            error::OPEN => "OPEN message error",
            error::UPDATE => "UPDATE message error",
            error::HOLD_EXPIRED => "hold time expired",
            error::FSM => "finite state machine error",
            error::CEASE => "cease",
            _ => "unknown error",
        };
        format!("{}/{} ({code})", self.code, self.subcode)
    }
}

/// Bounds-checked reads off the front of a slice: every accessor returns
/// None past the end, so no offset arithmetic can panic.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Takes one message off the front of `buf`: Ok(None) until the whole
/// message is there, then the message and the bytes it used; Err is the
/// NOTIFICATION to send for a malformed one. `four_octet_as` is whether
/// both sides said so in their OPENs (AS_PATH's AS width).
pub fn decode(buf: &[u8], four_octet_as: bool) -> Result<Option<(Message, usize)>, Notification> {
    let mut header = Reader { buf };
    let (Some(marker), Some(length), Some(kind)) = (header.take(16), header.u16(), header.u8())
    else {
        return Ok(None);
    };
    if marker.iter().any(|b| *b != 0xff) {
        return Err(Notification::new(error::HEADER, error::NOT_SYNCHRONIZED));
    }
    let length = usize::from(length);
    // (the shortest length, whether it is the only one)
    let (minimum, exact) = match kind {
        OPEN => (29, false),
        UPDATE => (23, false),
        NOTIFICATION => (21, false),
        KEEPALIVE => (HEADER_LEN, true),
        ROUTE_REFRESH => (23, true),
        _ => {
            return Err(Notification::with_data(
                error::HEADER,
                error::BAD_TYPE,
                &[kind],
            ))
        }
    };
    if length > MAX_LEN || length < minimum || (exact && length != minimum) {
        let bytes = (length as u16).to_be_bytes();
        return Err(Notification::with_data(
            error::HEADER,
            error::BAD_LENGTH,
            &bytes,
        ));
    }
    let Some(body) = buf.get(HEADER_LEN..length) else {
        return Ok(None);
    };
    let mut body = Reader { buf: body };
    let message = match kind {
        OPEN => Message::Open(decode_open(&mut body)?),
        UPDATE => Message::Update(decode_update(&mut body, four_octet_as)?),
        NOTIFICATION => {
            let (code, subcode) = (body.u8().unwrap_or(0), body.u8().unwrap_or(0));
            Message::Notification(Notification::with_data(code, subcode, body.buf))
        }
        KEEPALIVE => Message::Keepalive,
        _ => {
            let afi = body.u16().unwrap_or(0);
            let _reserved = body.u8();
            Message::RouteRefresh(afi, body.u8().unwrap_or(0))
        }
    };
    Ok(Some((message, length)))
}

fn decode_open(body: &mut Reader<'_>) -> Result<Open, Notification> {
    let bad_length = || Notification::new(error::HEADER, error::BAD_LENGTH);
    let version = body.u8().ok_or_else(bad_length)?;
    if version != 4 {
        return Err(Notification::with_data(
            error::OPEN,
            error::UNSUPPORTED_VERSION,
            &[0, 4],
        ));
    }
    let my_as = body.u16().ok_or_else(bad_length)?;
    let hold_time = body.u16().ok_or_else(bad_length)?;
    if hold_time == 1 || hold_time == 2 {
        return Err(Notification::new(error::OPEN, error::UNACCEPTABLE_HOLD));
    }
    let router_id = Ipv4Addr::from(body.u32().ok_or_else(bad_length)?);
    let params_len = body.u8().ok_or_else(bad_length)?;
    let malformed = || Notification::new(error::OPEN, 0);
    let mut params = Reader {
        buf: body.take(params_len.into()).ok_or_else(malformed)?,
    };
    let mut open = Open {
        asn: my_as.into(),
        hold_time,
        router_id,
        four_octet_as: false,
        route_refresh: false,
    };
    while !params.is_empty() {
        let kind = params.u8().ok_or_else(malformed)?;
        let len = params.u8().ok_or_else(malformed)?;
        let value = params.take(len.into()).ok_or_else(malformed)?;
        if kind != 2 {
            return Err(Notification::new(error::OPEN, error::UNSUPPORTED_PARAMETER));
        }
        let mut caps = Reader { buf: value };
        while !caps.is_empty() {
            let code = caps.u8().ok_or_else(malformed)?;
            let len = caps.u8().ok_or_else(malformed)?;
            let mut value = Reader {
                buf: caps.take(len.into()).ok_or_else(malformed)?,
            };
            match code {
                CAP_ROUTE_REFRESH => open.route_refresh = true,
                CAP_FOUR_OCTET_AS => {
                    open.asn = value.u32().ok_or_else(malformed)?;
                    open.four_octet_as = true;
                }
                _ => {}
            }
        }
    }
    Ok(open)
}

fn decode_update(body: &mut Reader<'_>, four_octet_as: bool) -> Result<Update, Notification> {
    let malformed = || Notification::new(error::UPDATE, error::MALFORMED_ATTRIBUTES);
    let withdrawn_len = body.u16().ok_or_else(malformed)?;
    let withdrawn = body.take(withdrawn_len.into()).ok_or_else(malformed)?;
    let attributes_len = body.u16().ok_or_else(malformed)?;
    let attributes = body.take(attributes_len.into()).ok_or_else(malformed)?;
    // Malformed prefixes leave no safe reading of the message: the
    // session is reset (RFC 7606 5.3).
    let update = Update {
        withdrawn: decode_prefixes(withdrawn)?,
        nlri: decode_prefixes(body.buf)?,
        ..Update::default()
    };
    match decode_attributes(attributes, four_octet_as, !update.nlri.is_empty()) {
        Ok(attributes) => Ok(Update {
            attributes,
            ..update
        }),
        // A malformed attribute (its total length found the NLRI all the
        // same): the routes are withdrawn, the session lives (RFC 7606 2).
        Err(why) => Ok(Update {
            withdrawn: [update.withdrawn, update.nlri].concat(),
            treated_as_withdraw: Some(why),
            ..Update::default()
        }),
    }
}

fn decode_prefixes(buf: &[u8]) -> Result<Vec<Ipv4Net>, Notification> {
    let invalid = || Notification::new(error::UPDATE, error::INVALID_NETWORK);
    let mut reader = Reader { buf };
    let mut prefixes = Vec::new();
    while !reader.is_empty() {
        let length = reader.u8().ok_or_else(invalid)?;
        if length > 32 {
            return Err(invalid());
        }
        let bytes = reader
            .take(usize::from(length).div_ceil(8))
            .ok_or_else(invalid)?;
        let mut address = [0u8; 4];
        address[..bytes.len()].copy_from_slice(bytes);
        let net = Ipv4Net::new(Ipv4Addr::from(address), length).map_err(|_| invalid())?;
        prefixes.push(net.trunc());
    }
    Ok(prefixes)
}

/// The attributes of an UPDATE; the three well-known mandatory ones must
/// be there when it has NLRI.
fn decode_attributes(
    buf: &[u8],
    four_octet_as: bool,
    has_nlri: bool,
) -> Result<Option<Attributes>, Notification> {
    let malformed = || Notification::new(error::UPDATE, error::MALFORMED_ATTRIBUTES);
    let mut reader = Reader { buf };
    let (mut origin, mut as_path, mut next_hop) = (None, None, None);
    let (mut med, mut local_pref, mut communities) = (None, None, Vec::new());
    let mut seen = [false; 256];
    while !reader.is_empty() {
        let flags = reader.u8().ok_or_else(malformed)?;
        let kind = reader.u8().ok_or_else(malformed)?;
        let length = match flags & FLAG_EXTENDED {
            0 => reader.u8().map(usize::from),
            _ => reader.u16().map(usize::from),
        };
        let whole = |value: &[u8]| {
            let mut all = vec![flags, kind];
            all.extend_from_slice(value);
            all
        };
        let length = length.ok_or_else(malformed)?;
        let value = reader
            .take(length)
            .ok_or_else(|| Notification::new(error::UPDATE, error::ATTRIBUTE_LENGTH))?;
        // A repeated attribute: the first counts (RFC 7606 3g).
        if std::mem::replace(&mut seen[usize::from(kind)], true) {
            continue;
        }
        let well_known = matches!(kind, ATTR_ORIGIN | ATTR_AS_PATH | ATTR_NEXT_HOP);
        let expected_flags = match kind {
            ATTR_ORIGIN | ATTR_AS_PATH | ATTR_NEXT_HOP | ATTR_LOCAL_PREF => Some(FLAG_TRANSITIVE),
            ATTR_MED => Some(FLAG_OPTIONAL),
            ATTR_COMMUNITIES => Some(FLAG_OPTIONAL | FLAG_TRANSITIVE),
            _ => None,
        };
        if let Some(expected) = expected_flags {
            if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != expected {
                return Err(Notification::with_data(
                    error::UPDATE,
                    error::ATTRIBUTE_FLAGS,
                    &whole(value),
                ));
            }
        }
        let bad_length =
            || Notification::with_data(error::UPDATE, error::ATTRIBUTE_LENGTH, &whole(value));
        let four = || -> Result<u32, Notification> {
            let b: [u8; 4] = value.try_into().map_err(|_| bad_length())?;
            Ok(u32::from_be_bytes(b))
        };
        match kind {
            ATTR_ORIGIN => {
                let [code] = value else {
                    return Err(bad_length());
                };
                origin = Some(match code {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => {
                        return Err(Notification::with_data(
                            error::UPDATE,
                            error::INVALID_ORIGIN,
                            &whole(value),
                        ))
                    }
                });
            }
            ATTR_AS_PATH => as_path = Some(decode_as_path(value, four_octet_as)?),
            ATTR_NEXT_HOP => {
                let hop = Ipv4Addr::from(four()?);
                if hop.is_unspecified() || hop.is_broadcast() || hop.is_multicast() {
                    return Err(Notification::with_data(
                        error::UPDATE,
                        error::INVALID_NEXT_HOP,
                        &whole(value),
                    ));
                }
                next_hop = Some(hop);
            }
            ATTR_MED => med = Some(four()?),
            ATTR_LOCAL_PREF => local_pref = Some(four()?),
            ATTR_COMMUNITIES => {
                if value.len() % 4 != 0 {
                    return Err(bad_length());
                }
                communities = (value.chunks_exact(4))
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
            }
            _ if !well_known && flags & FLAG_OPTIONAL == 0 && kind > 7 => {
                return Err(Notification::with_data(
                    error::UPDATE,
                    error::UNRECOGNIZED_WELL_KNOWN,
                    &whole(value),
                ));
            }
            _ => {}
        }
    }
    let missing =
        |kind: u8| Notification::with_data(error::UPDATE, error::MISSING_WELL_KNOWN, &[kind]);
    match (origin, as_path, next_hop) {
        (Some(origin), Some(as_path), Some(next_hop)) => Ok(Some(Attributes {
            origin,
            as_path,
            next_hop,
            med,
            local_pref,
            communities,
        })),
        _ if !has_nlri => Ok(None),
        (None, _, _) => Err(missing(ATTR_ORIGIN)),
        (_, None, _) => Err(missing(ATTR_AS_PATH)),
        (_, _, None) => Err(missing(ATTR_NEXT_HOP)),
    }
}

fn decode_as_path(value: &[u8], four_octet_as: bool) -> Result<Vec<Segment>, Notification> {
    let malformed = || Notification::new(error::UPDATE, error::MALFORMED_AS_PATH);
    let mut reader = Reader { buf: value };
    let mut segments = Vec::new();
    while !reader.is_empty() {
        let kind = reader.u8().ok_or_else(malformed)?;
        let count = reader.u8().ok_or_else(malformed)?;
        let ases = (0..count)
            .map(|_| match four_octet_as {
                true => reader.u32(),
                false => reader.u16().map(u32::from),
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(malformed)?;
        segments.push(match kind {
            AS_SET => Segment::Set(ases),
            AS_SEQUENCE => Segment::Sequence(ases),
            _ => return Err(malformed()),
        });
    }
    Ok(segments)
}

/// The message on the wire. UPDATEs are the caller's to keep under
/// [`MAX_LEN`] ([`MAX_PREFIXES`] prefixes each).
pub fn encode(message: &Message, four_octet_as: bool) -> Vec<u8> {
    let mut out = vec![0xff; 16];
    out.extend_from_slice(&[0, 0]);
    match message {
        Message::Open(open) => {
            out.push(OPEN);
            encode_open(&mut out, open);
        }
        Message::Update(update) => {
            out.push(UPDATE);
            encode_update(&mut out, update, four_octet_as);
        }
        Message::Notification(n) => {
            out.extend_from_slice(&[NOTIFICATION, n.code, n.subcode]);
            out.extend_from_slice(&n.data);
        }
        Message::Keepalive => out.push(KEEPALIVE),
        Message::RouteRefresh(afi, safi) => {
            out.push(ROUTE_REFRESH);
            out.extend_from_slice(&afi.to_be_bytes());
            out.extend_from_slice(&[0, *safi]);
        }
    }
    let length = (out.len() as u16).to_be_bytes();
    out[16..18].copy_from_slice(&length);
    out
}

/// The most prefixes one UPDATE carries: 5 bytes each at most, well
/// within [`MAX_LEN`] with the attributes.
pub const MAX_PREFIXES: usize = 500;

fn encode_open(out: &mut Vec<u8>, open: &Open) {
    let my_as = u16::try_from(open.asn).unwrap_or(AS_TRANS);
    out.push(4);
    out.extend_from_slice(&my_as.to_be_bytes());
    out.extend_from_slice(&open.hold_time.to_be_bytes());
    out.extend_from_slice(&open.router_id.octets());
    let mut caps = vec![CAP_MULTIPROTOCOL, 4, 0, 1, 0, 1];
    if open.route_refresh {
        caps.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]);
    }
    if open.four_octet_as {
        caps.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
        caps.extend_from_slice(&open.asn.to_be_bytes());
    }
    out.push(caps.len() as u8 + 2);
    out.extend_from_slice(&[2, caps.len() as u8]);
    out.extend_from_slice(&caps);
}

fn encode_prefixes(out: &mut Vec<u8>, prefixes: &[Ipv4Net]) {
    for p in prefixes {
        let bytes = usize::from(p.prefix_len()).div_ceil(8);
        out.push(p.prefix_len());
        out.extend_from_slice(&p.network().octets()[..bytes]);
    }
}

fn encode_update(out: &mut Vec<u8>, update: &Update, four_octet_as: bool) {
    let mut withdrawn = Vec::new();
    encode_prefixes(&mut withdrawn, &update.withdrawn);
    out.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    out.extend_from_slice(&withdrawn);
    let mut attributes = Vec::new();
    if let Some(a) = &update.attributes {
        encode_attributes(&mut attributes, a, four_octet_as);
    }
    out.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    out.extend_from_slice(&attributes);
    encode_prefixes(out, &update.nlri);
}

fn encode_attributes(out: &mut Vec<u8>, a: &Attributes, four_octet_as: bool) {
    let mut attribute = |flags: u8, kind: u8, value: &[u8]| {
        out.extend_from_slice(&[flags | FLAG_EXTENDED, kind]);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    };
    attribute(FLAG_TRANSITIVE, ATTR_ORIGIN, &[a.origin as u8]);
    let mut path = Vec::new();
    for segment in &a.as_path {
        let (kind, ases) = match segment {
            Segment::Set(ases) => (AS_SET, ases),
            Segment::Sequence(ases) => (AS_SEQUENCE, ases),
        };
        // A segment holds 255 ASes at most; longer ones are split.
        for chunk in ases.chunks(255) {
            path.extend_from_slice(&[kind, chunk.len() as u8]);
            for asn in chunk {
                match four_octet_as {
                    true => path.extend_from_slice(&asn.to_be_bytes()),
                    false => path
                        .extend_from_slice(&u16::try_from(*asn).unwrap_or(AS_TRANS).to_be_bytes()),
                }
            }
        }
    }
    attribute(FLAG_TRANSITIVE, ATTR_AS_PATH, &path);
    attribute(FLAG_TRANSITIVE, ATTR_NEXT_HOP, &a.next_hop.octets());
    if let Some(med) = a.med {
        attribute(FLAG_OPTIONAL, ATTR_MED, &med.to_be_bytes());
    }
    if let Some(pref) = a.local_pref {
        attribute(FLAG_TRANSITIVE, ATTR_LOCAL_PREF, &pref.to_be_bytes());
    }
    if !a.communities.is_empty() {
        let value: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        attribute(FLAG_OPTIONAL | FLAG_TRANSITIVE, ATTR_COMMUNITIES, &value);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn prefix() -> impl Strategy<Value = Ipv4Net> {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
    }

    pub fn attributes() -> impl Strategy<Value = Attributes> {
        let segment = prop_oneof![
            proptest::collection::vec(any::<u32>(), 1..5).prop_map(Segment::Sequence),
            proptest::collection::vec(any::<u32>(), 1..3).prop_map(Segment::Set),
        ];
        (
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ],
            proptest::collection::vec(segment, 0..3),
            (1u32..0xdfff_ffff).prop_map(Ipv4Addr::from),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(any::<u32>(), 0..4),
        )
            .prop_map(
                |(origin, as_path, next_hop, med, local_pref, communities)| Attributes {
                    origin,
                    as_path,
                    next_hop,
                    med,
                    local_pref,
                    communities,
                },
            )
    }

    pub fn message() -> impl Strategy<Value = Message> {
        let update = (
            proptest::collection::vec(prefix(), 0..20),
            attributes(),
            proptest::collection::vec(prefix(), 0..20),
        )
            .prop_map(|(withdrawn, attributes, nlri)| {
                Message::Update(Update {
                    withdrawn,
                    attributes: Some(attributes),
                    nlri,
                    treated_as_withdraw: None,
                })
            });
        let open = (any::<u32>(), 3u16.., any::<u32>(), any::<bool>()).prop_map(
            |(asn, hold_time, id, route_refresh)| {
                Message::Open(Open {
                    asn,
                    hold_time,
                    router_id: Ipv4Addr::from(id),
                    four_octet_as: true,
                    route_refresh,
                })
            },
        );
        prop_oneof![
            update,
            open,
            Just(Message::Keepalive),
            (
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..8)
            )
                .prop_map(|(c, s, d)| Message::Notification(Notification::with_data(c, s, &d))),
            Just(Message::RouteRefresh(1, 1)),
        ]
    }

    proptest! {
        /// What the encoder writes, the decoder reads back whole.
        #[test]
        fn messages_round_trip(message in message()) {
            let bytes = encode(&message, true);
            prop_assert!(bytes.len() <= MAX_LEN);
            prop_assert_eq!(decode(&bytes, true), Ok(Some((message, bytes.len()))));
        }

        /// Random bytes after a valid header, and valid messages with
        /// bytes changed or cut, give a message, a NOTIFICATION or a wait
        /// for more: never a panic.
        #[test]
        fn malformed_input_never_panics(
            message in message(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            cut in any::<usize>(),
            four in any::<bool>(),
        ) {
            let mut bytes = encode(&message, true);
            for (at, byte) in flips {
                let at = HEADER_LEN + at % bytes.len().saturating_sub(HEADER_LEN).max(1);
                if let Some(b) = bytes.get_mut(at) {
                    *b = byte;
                }
            }
            let _ = decode(&bytes, four);
            let cut = cut % (bytes.len() + 1);
            if let Ok(Some((_, used))) = decode(&bytes[..cut], four) {
                prop_assert!(used <= cut);
            }
        }

        /// Any byte of a valid UPDATE's path attributes changed (the
        /// message's and the sections' lengths kept): never a session
        /// reset, and each route is either announced or withdrawn.
        #[test]
        fn a_damaged_attribute_withdraws_and_never_resets(
            message in message(),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let Message::Update(sent) = &message else { return Ok(()) };
            let mut bytes = encode(&message, true);
            let withdrawn_len = usize::from(u16::from_be_bytes([bytes[19], bytes[20]]));
            let attributes_at = 21 + withdrawn_len + 2;
            let attributes_len = usize::from(u16::from_be_bytes([bytes[attributes_at - 2], bytes[attributes_at - 1]]));
            if attributes_len == 0 {
                return Ok(());
            }
            bytes[attributes_at + at % attributes_len] = byte;
            let Ok(Some((Message::Update(got), _))) = decode(&bytes, true) else {
                panic!("a session reset for a damaged attribute");
            };
            for prefix in &sent.nlri {
                prop_assert!(got.nlri.contains(prefix) || got.withdrawn.contains(prefix));
            }
        }

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200), kind in 0u8..7) {
            let mut bytes = vec![0xff; 16];
            bytes.extend_from_slice(&((body.len() + HEADER_LEN) as u16).to_be_bytes());
            bytes.push(kind);
            bytes.extend_from_slice(&body);
            let _ = decode(&bytes, true);
            let _ = decode(&bytes, false);
        }
    }

    #[test]
    fn an_update_without_next_hop_withdraws_its_routes_and_names_the_missing_attribute() {
        let mut update = encode(
            &Message::Update(Update {
                withdrawn: vec![],
                attributes: Some(Attributes {
                    origin: Origin::Igp,
                    as_path: vec![Segment::Sequence(vec![65001])],
                    next_hop: Ipv4Addr::new(10, 0, 0, 2),
                    med: None,
                    local_pref: None,
                    communities: Vec::new(),
                }),
                nlri: vec!["10.9.0.0/16".parse().unwrap()],
                treated_as_withdraw: None,
            }),
            true,
        );
        // Drop NEXT_HOP (flags, type, 2 length bytes, 4 value bytes).
        let at = update.windows(2).position(|w| w == [0x50, 3]).unwrap();
        update.drain(at..at + 8);
        let attributes_len = u16::from_be_bytes([update[21], update[22]]) - 8;
        update[21..23].copy_from_slice(&attributes_len.to_be_bytes());
        let len = update.len() as u16;
        update[16..18].copy_from_slice(&len.to_be_bytes());
        let Ok(Some((Message::Update(u), _))) = decode(&update, true) else {
            panic!("RFC 7606: not a session reset");
        };
        assert_eq!(u.withdrawn, ["10.9.0.0/16".parse::<Ipv4Net>().unwrap()]);
        assert!(u.nlri.is_empty() && u.attributes.is_none());
        let n = u.treated_as_withdraw.unwrap();
        assert_eq!((n.code, n.subcode, n.data), (3, 3, vec![ATTR_NEXT_HOP]));
    }

    #[test]
    fn a_bad_marker_and_a_bad_length_are_header_errors() {
        let mut keepalive = encode(&Message::Keepalive, true);
        assert_eq!(decode(&keepalive[..10], true), Ok(None));
        keepalive[17] = 20;
        assert_eq!(
            decode(&keepalive, true).unwrap_err().subcode,
            error::BAD_LENGTH
        );
        keepalive[0] = 0;
        assert_eq!(
            decode(&keepalive, true).unwrap_err().subcode,
            error::NOT_SYNCHRONIZED
        );
    }
}
