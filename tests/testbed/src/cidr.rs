//! IPv4 CIDR parsing, to make sure the pod runner only ever binds addresses of the pod CIDR.

use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & self.mask()) == (u32::from(self.base) & self.mask())
    }

    /// True when every address of the CIDR is in 127.0.0.0/8.
    pub fn is_loopback(&self) -> bool {
        self.prefix >= 8 && self.base.octets()[0] == 127
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not IP/PREFIX"))?;
        let base: Ipv4Addr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let prefix: u8 = prefix.parse().map_err(|e| format!("{s:?}: {e}"))?;
        if prefix > 32 {
            return Err(format!("{s:?}: prefix > 32"));
        }
        Ok(Cidr { base, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_and_loopback() {
        let c: Cidr = "127.0.10.0/24".parse().unwrap();
        assert!(c.contains("127.0.10.7".parse().unwrap()));
        assert!(!c.contains("127.0.11.7".parse().unwrap()));
        assert!(c.is_loopback());
        let wide: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(!wide.is_loopback());
        assert!("10.0.0.0/8"
            .parse::<Cidr>()
            .map(|c| !c.is_loopback())
            .unwrap());
        assert!("127.0.0.1".parse::<Cidr>().is_err());
        assert!("127.0.0.0/33".parse::<Cidr>().is_err());
    }
}
