//! A small, fast, seedable PRNG (xorshift64*), shared lock-free: good enough for load
//! balancing and jitter, not for secrets.

use std::sync::atomic::{AtomicU64, Ordering};

/// Lock-free xorshift64* state.
#[derive(Debug)]
pub(crate) struct Rng(AtomicU64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub(crate) fn new(seed: u64) -> Self {
        Rng(AtomicU64::new(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        }))
    }

    /// A generator seeded from the clock and the address of a stack value.
    pub(crate) fn from_entropy() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let local = 0u8;
        Rng::new(t ^ (&local as *const u8 as u64).rotate_left(32))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&self) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        loop {
            let mut n = x;
            n ^= n >> 12;
            n ^= n << 25;
            n ^= n >> 27;
            match self
                .0
                .compare_exchange_weak(x, n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return n.wrapping_mul(0x2545_F491_4F6C_DD1D),
                Err(cur) => x = cur,
            }
        }
    }

    /// A uniform index in `0..n` (`n > 0`).
    pub(crate) fn below(&self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Two distinct uniform indices in `0..n` (`n > 1`), from one draw.
    pub(crate) fn pair_below(&self, n: usize) -> (usize, usize) {
        let x = self.next_u64();
        let a = (((x >> 32) * n as u64) >> 32) as usize;
        let offset = (((x & 0xFFFF_FFFF) * (n - 1) as u64) >> 32) as usize;
        let b = a + 1 + offset;
        (a, if b >= n { b - n } else { b })
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn a_pair_is_two_distinct_members_each_drawn_about_equally() {
        let rng = Rng::new(42);
        for n in [2usize, 3, 5] {
            let mut firsts = vec![0u32; n];
            let mut seconds = vec![0u32; n];
            for _ in 0..30_000 {
                let (a, b) = rng.pair_below(n);
                assert!(a < n && b < n && a != b, "n = {n}: ({a}, {b})");
                firsts[a] += 1;
                seconds[b] += 1;
            }
            let even = 30_000 / n as u32;
            for count in firsts.iter().chain(&seconds) {
                assert!(
                    count.abs_diff(even) < even / 10,
                    "n = {n}: {firsts:?} {seconds:?}"
                );
            }
        }
    }
}
