//! Parsing of byte counts (`--bytes 10M`) and durations (`--timeout 2.5`).

use std::time::Duration;

/// Parse a byte count: a decimal integer with an optional binary suffix
/// `K`, `M`, `G` or `T` (powers of 1024, case-insensitive; `KiB`, `KB`, `k`
/// and a trailing `B` are accepted too), e.g. `1500`, `64K`, `10M`, `1GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty size".to_string());
    }
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!("invalid size '{s}': must start with a number"));
    }
    let n: u64 = num
        .parse()
        .map_err(|e| format!("invalid size '{s}': {e}"))?;
    let suffix = suffix.trim().to_ascii_lowercase();
    let shift = match suffix.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "invalid size '{s}': unknown suffix (use K, M, G or T)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size '{s}': too large"))
}

/// Parse a non-negative number of seconds (fractions allowed).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("invalid number of seconds '{s}': {e}"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("invalid number of seconds '{s}': {e}"))
}

/// Human-readable byte count for stderr reports.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size(" 42 "), Ok(42));
        assert_eq!(parse_size("7B"), Ok(7));
    }

    #[test]
    fn suffixes() {
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("3MiB"), Ok(3 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("10X").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615K").is_err());
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_secs("abc").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(10 << 20), "10.00 MiB");
    }
}
