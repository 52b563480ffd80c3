//! CIDR functions from go-cty-funcs (`cidrhost`, `cidrnetmask`, `cidrsubnet`,
//! `cidrsubnets`), for IPv4 and IPv6. Addresses are handled as u128 of `bits` width.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hcl::Value;

use crate::bake::hcl::stdlib::args::{CallError, arg_int, arg_str, bad, failed};

/// A parsed prefix: the masked network address, its length, and the address width.
#[derive(Debug, Clone, Copy)]
struct Net {
    addr: u128,
    len: u32,
    bits: u32,
}

/// The all-ones value of `width` bits.
fn ones(width: u32) -> u128 {
    if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

impl Net {
    fn mask(bits: u32, len: u32) -> u128 {
        ones(bits) ^ ones(bits - len)
    }

    fn with_len(addr: u128, len: u32, bits: u32) -> Net {
        Net {
            addr: addr & Net::mask(bits, len),
            len,
            bits,
        }
    }

    fn last(&self) -> u128 {
        self.addr | ones(self.bits - self.len)
    }

    fn contains(&self, ip: u128) -> bool {
        ip & Net::mask(self.bits, self.len) == self.addr
    }

    fn ip_text(&self, ip: u128) -> String {
        if self.bits == 32 {
            Ipv4Addr::from(u32::try_from(ip & ones(32)).unwrap_or(0)).to_string()
        } else {
            Ipv6Addr::from(ip).to_string()
        }
    }

    fn text(&self) -> String {
        format!("{}/{}", self.ip_text(self.addr), self.len)
    }
}

fn parse_cidr(args: &[Value]) -> Result<Net, CallError> {
    let s = arg_str(args, 0)?;
    let invalid = || bad(0, format!("invalid CIDR expression: `{s}`"));
    let (ip, len) = s.split_once('/').ok_or_else(invalid)?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let len: u32 = len.parse().map_err(|_| invalid())?;
    let (addr, bits) = match ip.parse::<IpAddr>().map_err(|_| invalid())? {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    if len > bits {
        return Err(invalid());
    }
    Ok(Net::with_len(addr, len, bits))
}

pub(super) fn cidrhost(args: Vec<Value>) -> Result<Value, CallError> {
    let net = parse_cidr(&args)?;
    let hostnum = arg_int(&args, 1)?;
    let host_bits = net.bits - net.len;
    let size: Option<i128> = (host_bits < 127).then(|| 1i128 << host_bits);
    // Compat: go-cidr HostBig — a negative host number counts back from the end.
    let n = i128::from(hostnum);
    let n = match size {
        Some(size) if n < 0 => n + size,
        _ => n,
    };
    if n < 0 || size.is_some_and(|size| n >= size) {
        return Err(bad(
            1,
            format!(
                "prefix of {} does not accommodate a host numbered {hostnum}",
                net.len
            ),
        ));
    }
    Ok(Value::String(net.ip_text(net.addr | n as u128)))
}

pub(super) fn cidrnetmask(args: Vec<Value>) -> Result<Value, CallError> {
    let net = parse_cidr(&args)?;
    Ok(Value::String(net.ip_text(Net::mask(net.bits, net.len))))
}

pub(super) fn cidrsubnet(args: Vec<Value>) -> Result<Value, CallError> {
    let net = parse_cidr(&args)?;
    let newbits = arg_int(&args, 1)?;
    let netnum = arg_int(&args, 2)?;
    let newlen = i64::from(net.len) + newbits;
    if newbits < 0 || newlen > i64::from(net.bits) {
        return Err(bad(
            1,
            format!(
                "insufficient address space to extend prefix of {} by {newbits}",
                net.len
            ),
        ));
    }
    let newbits = newbits as u32;
    if netnum < 0 || (netnum as u128) > ones(newbits) {
        return Err(bad(
            2,
            format!(
                "prefix extension of {newbits} does not accommodate a subnet numbered {netnum}"
            ),
        ));
    }
    let newlen = newlen as u32;
    let shifted = if net.bits - newlen >= 128 {
        0
    } else {
        (netnum as u128) << (net.bits - newlen)
    };
    Ok(Value::String(
        Net::with_len(net.addr | shifted, newlen, net.bits).text(),
    ))
}

pub(super) fn cidrsubnets(args: Vec<Value>) -> Result<Value, CallError> {
    let net = parse_cidr(&args)?;
    if args.len() == 1 {
        return Ok(Value::Array(Vec::new()));
    }
    let full = ones(net.bits);
    let first_len = i64::from(net.len) + arg_int(&args, 1)?;
    let first_len = u32::try_from(first_len.clamp(0, i64::from(net.bits))).unwrap_or(net.len);
    // Compat: go-cty-funcs starts from the subnet just before the base address and
    // allocates each requested size with go-cidr NextSubnet.
    let mut current = Net::with_len(net.addr.wrapping_sub(1) & full, first_len, net.bits);
    let mut out = Vec::new();
    for i in 1..args.len() {
        let newbits = arg_int(&args, i)?;
        let len = i64::from(net.len) + newbits;
        if newbits < 1 {
            return Err(bad(i, "must extend prefix by at least one bit"));
        }
        if len > i64::from(net.bits) {
            return Err(bad(
                i,
                format!(
                    "would extend prefix to {len} bits, which is too long for an IPv{} address",
                    if net.bits == 32 { 4 } else { 6 }
                ),
            ));
        }
        let len = len as u32;
        let widened = Net::with_len(current.last(), len, net.bits);
        let next_ip = widened.last().wrapping_add(1) & full;
        let next = Net::with_len(next_ip, len, net.bits);
        if next_ip == 0 || !net.contains(next.addr) {
            return Err(failed(format!(
                "not enough remaining address space for a subnet with a prefix of {len} bits after {}",
                current.text()
            )));
        }
        out.push(Value::String(next.text()));
        current = next;
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::call;
    use hcl::Value;

    fn s(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Ok(Value::String(s)) => s,
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    #[test]
    fn hosts_and_masks() {
        assert_eq!(
            s("cidrhost", vec!["10.12.112.0/20".into(), 16.into()]),
            "10.12.112.16"
        );
        assert_eq!(
            s("cidrhost", vec!["10.12.112.0/20".into(), 268.into()]),
            "10.12.113.12"
        );
        assert_eq!(
            s("cidrhost", vec!["10.0.0.0/24".into(), (-2).into()]),
            "10.0.0.254"
        );
        assert_eq!(
            s(
                "cidrhost",
                vec!["fd00:fd12:3456:7890:00a2::/72".into(), 34.into()]
            ),
            "fd00:fd12:3456:7890::22"
        );
        assert!(call("cidrhost", vec!["10.0.0.0/30".into(), 4.into()]).is_err());
        assert!(call("cidrhost", vec!["10.0.0.0".into(), 1.into()]).is_err());
        assert!(call("cidrhost", vec!["10.0.0.0/33".into(), 1.into()]).is_err());
        assert_eq!(
            s("cidrnetmask", vec!["172.16.0.0/12".into()]),
            "255.240.0.0"
        );
        assert_eq!(s("cidrnetmask", vec!["::/16".into()]), "ffff::");
        assert!(call("cidrnetmask", vec!["nope/1".into()]).is_err());
    }

    #[test]
    fn subnets() {
        assert_eq!(
            s(
                "cidrsubnet",
                vec!["172.16.0.0/12".into(), 4.into(), 2.into()]
            ),
            "172.18.0.0/16"
        );
        assert_eq!(
            s(
                "cidrsubnet",
                vec!["10.1.2.0/24".into(), 4.into(), 15.into()]
            ),
            "10.1.2.240/28"
        );
        assert_eq!(
            s(
                "cidrsubnet",
                vec!["fd00:fd12:3456:7890::/56".into(), 16.into(), 162.into()]
            ),
            "fd00:fd12:3456:7800:a200::/72"
        );
        assert!(call("cidrsubnet", vec!["10.0.0.0/30".into(), 4.into(), 0.into()]).is_err());
        assert!(call("cidrsubnet", vec!["10.0.0.0/24".into(), 2.into(), 4.into()]).is_err());
        let strs = |v: &[&str]| Value::Array(v.iter().map(|s| Value::from(*s)).collect());
        assert_eq!(
            call(
                "cidrsubnets",
                vec!["10.1.0.0/16".into(), 4.into(), 4.into(), 8.into(), 4.into()]
            ),
            Ok(strs(&[
                "10.1.0.0/20",
                "10.1.16.0/20",
                "10.1.32.0/24",
                "10.1.48.0/20"
            ]))
        );
        assert_eq!(
            call(
                "cidrsubnets",
                vec!["fd00:fd12:3456:7890::/56".into(), 16.into(), 16.into()]
            ),
            Ok(strs(&[
                "fd00:fd12:3456:7800::/72",
                "fd00:fd12:3456:7800:100::/72"
            ]))
        );
        assert_eq!(
            call("cidrsubnets", vec!["10.0.0.0/8".into()]),
            Ok(strs(&[]))
        );
        assert!(
            call(
                "cidrsubnets",
                vec!["10.0.0.0/30".into(), 1.into(), 1.into(), 1.into()]
            )
            .is_err()
        );
        assert!(call("cidrsubnets", vec!["10.0.0.0/30".into(), 0.into()]).is_err());
        assert!(call("cidrsubnets", vec!["10.0.0.0/30".into(), 3.into()]).is_err());
    }
}
