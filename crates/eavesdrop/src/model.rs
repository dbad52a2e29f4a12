//! Byte models the attack scores candidate plaintext with.

use std::path::Path;

/// Log-probabilities of the 256 byte values for one kind of traffic.
#[derive(Clone, Debug)]
pub struct ByteModel {
    pub name: String,
    pub log_p: [f64; 256],
    /// For a model learned from a sample: `ln P(b | a) - ln P(b)` at
    /// `a * 256 + b`, what a byte pair adds to the unigram score.
    pub pair_gain: Option<Vec<f64>>,
}

/// Below this many bytes a sample says too little about byte pairs.
const PAIR_SAMPLE_MIN: usize = 4096;

/// Weight of the unigram prior in the byte-pair estimate, in bytes.
const PAIR_PRIOR: f64 = 8.0;

/// English letter frequencies (per mille), a to z.
const LETTERS: [f64; 26] = [
    82.0, 15.0, 28.0, 43.0, 127.0, 22.0, 20.0, 61.0, 70.0, 1.5, 7.7, 40.0, 24.0, 67.0, 75.0, 19.0,
    0.95, 60.0, 63.0, 91.0, 28.0, 9.8, 24.0, 1.5, 20.0, 0.74,
];

impl ByteModel {
    /// Every byte equally likely: what scrambled or compressed data looks
    /// like, and so an attack that can only guess.
    pub fn uniform() -> Self {
        ByteModel {
            name: "uniform".into(),
            log_p: [-(256f64.ln()); 256],
            pair_gain: None,
        }
    }

    /// Running English prose.
    pub fn english() -> Self {
        Self::from_weights("english", &english_weights())
    }

    /// HTTP/1.1 requests and responses with HTML bodies: English plus
    /// header and markup characters.
    pub fn http() -> Self {
        let mut w = english_weights();
        let total: f64 = w.iter().sum();
        let mut markup = [0.0f64; 256];
        for b in b'0'..=b'9' {
            markup[usize::from(b)] = 1.5;
        }
        for b in (b'A'..=b'Z').chain(b'a'..=b'z') {
            markup[usize::from(b)] = 1.0;
        }
        for (&b, &weight) in b"\r\n<>/=\":-.;, _&?#%".iter().zip(
            [
                5.0, 5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 2.5, 2.5, 1.0, 1.0, 4.0, 0.5, 0.5, 0.5,
                0.3, 0.3,
            ]
            .iter(),
        ) {
            markup[usize::from(b)] = weight;
        }
        let markup_total: f64 = markup.iter().sum();
        for (a, m) in w.iter_mut().zip(markup) {
            *a = 0.6 * *a / total + 0.4 * m / markup_total;
        }
        Self::from_weights("http", &w)
    }

    /// The byte frequencies of a sample of the traffic, smoothed so that
    /// no byte is impossible, and from a sample large enough the
    /// frequencies of byte pairs too.
    pub fn learn(name: &str, sample: &[u8]) -> Self {
        let mut w = [0.5f64; 256];
        for &b in sample {
            w[usize::from(b)] += 1.0;
        }
        let mut model = Self::from_weights(name, &w);
        if sample.len() >= PAIR_SAMPLE_MIN {
            let mut pairs = vec![0u32; 256 * 256];
            let mut firsts = [0u32; 256];
            for pair in sample.windows(2) {
                pairs[usize::from(pair[0]) * 256 + usize::from(pair[1])] += 1;
                firsts[usize::from(pair[0])] += 1;
            }
            let p: Vec<f64> = model.log_p.iter().map(|l| l.exp()).collect();
            let gain = (0..256 * 256)
                .map(|ab| {
                    let (a, b) = (ab / 256, ab % 256);
                    let cond = (f64::from(pairs[ab]) + PAIR_PRIOR * p[b])
                        / (f64::from(firsts[a]) + PAIR_PRIOR);
                    cond.ln() - model.log_p[b]
                })
                .collect();
            model.pair_gain = Some(gain);
        }
        model
    }

    /// `english`, `http`, `uniform`, or the path of a sample to learn from.
    pub fn named(spec: &str) -> Result<Self, String> {
        match spec {
            "english" => Ok(Self::english()),
            "http" => Ok(Self::http()),
            "uniform" => Ok(Self::uniform()),
            path => {
                let sample = std::fs::read(Path::new(path))
                    .map_err(|e| format!("--model {path}: not english|http|uniform and not a readable sample file: {e}"))?;
                if sample.is_empty() {
                    return Err(format!("--model {path}: the sample file is empty"));
                }
                Ok(Self::learn(&format!("learned from {path}"), &sample))
            }
        }
    }

    fn from_weights(name: &str, w: &[f64; 256]) -> Self {
        let total: f64 = w.iter().sum();
        ByteModel {
            name: name.into(),
            log_p: w.map(|x| (x / total).ln()),
            pair_gain: None,
        }
    }

    /// The most likely byte.
    pub fn mode(&self) -> u8 {
        (0..=255u8)
            .max_by(|&a, &b| self.log_p[usize::from(a)].total_cmp(&self.log_p[usize::from(b)]))
            .unwrap_or(b' ')
    }
}

fn english_weights() -> [f64; 256] {
    // Per mille of running text: letters share about 80%, then space,
    // punctuation, line breaks, capitals and digits.
    let mut w = [0.001f64; 256];
    for b in 0x20..0x7fu8 {
        w[usize::from(b)] = 0.05;
    }
    for (i, f) in LETTERS.iter().enumerate() {
        w[usize::from(b'a') + i] = f * 0.78;
        w[usize::from(b'A') + i] = f * 0.03 + 0.2;
    }
    for (&b, &f) in b" .,\n'\"-;:?!()0123456789".iter().zip(
        [
            180.0, 9.0, 10.0, 6.0, 2.5, 2.0, 2.0, 0.4, 0.4, 0.5, 0.4, 0.2, 0.2, 0.8, 0.8, 0.6, 0.5,
            0.5, 0.5, 0.4, 0.4, 0.4, 0.4,
        ]
        .iter(),
    ) {
        w[usize::from(b)] = f;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_distributions() {
        for m in [
            ByteModel::english(),
            ByteModel::http(),
            ByteModel::uniform(),
        ] {
            let sum: f64 = m.log_p.iter().map(|l| l.exp()).sum();
            assert!((sum - 1.0).abs() < 1e-9, "{}: {sum}", m.name);
        }
        assert_eq!(ByteModel::english().mode(), b' ');
    }

    #[test]
    fn learned_model_prefers_the_sample_bytes() {
        let m = ByteModel::learn("t", b"aaab");
        assert!(m.log_p[usize::from(b'a')] > m.log_p[usize::from(b'b')]);
        assert!(m.log_p[usize::from(b'b')] > m.log_p[0]);
    }
}
