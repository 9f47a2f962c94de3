//! Exact evaluation of numeric expressions with sympy's number semantics: `Rational` arithmetic is
//! exact, a `Float` literal of up to 15 digits is a double (so `0.1 + 0.2` is not `0.3`, as in sympy),
//! and a longer literal keeps its digits (so `0.3333333333333333` is not `1/3`). Anything irrational
//! or symbolic has no exact value here and is left to the numeric comparison in `equiv`.

use super::expr::Expr;

/// An exact rational with a positive denominator, in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Q(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a as i128
}

impl Q {
    fn new(n: i128, d: i128) -> Option<Q> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d).max(1);
        let s = if d < 0 { -1 } else { 1 };
        Some(Q((n / g).checked_mul(s)?, (d / g).checked_mul(s)?))
    }
    fn f(self) -> f64 {
        self.0 as f64 / self.1 as f64
    }
    fn add(self, o: Q) -> Option<Q> {
        Q::new(self.0.checked_mul(o.1)?.checked_add(o.0.checked_mul(self.1)?)?, self.1.checked_mul(o.1)?)
    }
    fn mul(self, o: Q) -> Option<Q> {
        Q::new(self.0.checked_mul(o.0)?, self.1.checked_mul(o.1)?)
    }
    fn recip(self) -> Option<Q> {
        Q::new(self.1, self.0)
    }
    fn powi(self, e: i128) -> Option<Q> {
        let base = if e < 0 { self.recip()? } else { self };
        let e = u32::try_from(e.unsigned_abs()).ok()?;
        Q::new(base.0.checked_pow(e)?, base.1.checked_pow(e)?)
    }
    fn int(self) -> Option<i128> {
        (self.1 == 1).then_some(self.0)
    }
}

/// Exact k-th root of a non-negative integer, if it is a perfect power.
fn iroot(n: i128, k: u32) -> Option<i128> {
    if n < 0 {
        return None;
    }
    let guess = (n as f64).powf(1.0 / k as f64).round() as i128;
    (guess.saturating_sub(1)..=guess + 1).find(|&r| r >= 0 && r.checked_pow(k) == Some(n))
}

/// A value of the exact evaluation: sympy's `Rational`, its 15-digit `Float`, or a `Float` written
/// with more digits than a double holds, which sympy keeps at that precision (kept exactly here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Q(Q),
    F(f64),
    D(Q),
}

impl Num {
    pub(super) fn f(self) -> f64 {
        match self {
            Num::Q(q) | Num::D(q) => q.f(),
            Num::F(x) => x,
        }
    }
}

/// The exact value of a finite double.
fn exact_f64(x: f64) -> Option<Q> {
    if x == 0.0 {
        return Some(Q(0, 1));
    }
    let bits = x.to_bits();
    let (biased, frac) = (((bits >> 52) & 0x7ff) as i32, (bits & ((1u64 << 52) - 1)) as i128);
    let (m, e) = if biased == 0 { (frac, -1074) } else { (frac | 1 << 52, biased - 1075) };
    let m = if x < 0.0 { -m } else { m };
    if e >= 0 {
        Q::new(m.checked_mul(1i128.checked_shl(e as u32)?)?, 1)
    } else if e > -126 {
        Q::new(m, 1i128 << -e)
    } else {
        None
    }
}

/// Why an expression has no exact value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NotExact {
    /// It involves variables or irrational numbers: compare numerically.
    Symbolic,
    /// Division by zero or infinity: sympy's `zoo`/`nan`, never zero.
    Invalid,
    /// An operation sympy refuses (`&` on non-integers): never zero.
    Unsupported,
}

/// An exact value and whether a decimal literal went into it.
pub(super) type Exact = Result<(Num, bool), NotExact>;

fn float_literal(s: &str) -> Option<Num> {
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(p) => (&s[..p], s[p + 1..].parse::<i32>().ok()?),
        None => (s, 0),
    };
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').len();
    let x = s.parse::<f64>().ok()?;
    if significant <= 15 {
        return Some(Num::F(x));
    }
    let frac_digits = mant.split_once('.').map_or(0, |(_, f)| f.len());
    let n: i128 = digits.parse().ok()?;
    // In i128: `1.0000000000000001e-2147483648` overflowed the i32 exponent (a panic in debug).
    let scale = Q(10, 1).powi(exp as i128 - frac_digits as i128);
    Some(scale.and_then(|p| Q(n, 1).mul(p)).map_or(Num::F(x), Num::D))
}

/// The exact rationals behind two operands, and whether the result is a long `Float` (`D`); `None`
/// when the operation happens in double precision.
fn exact_pair(x: Num, y: Num) -> Option<(Q, Q, bool)> {
    match (x, y) {
        (Num::Q(a), Num::Q(b)) => Some((a, b, false)),
        (Num::Q(a) | Num::D(a), Num::Q(b) | Num::D(b)) => Some((a, b, true)),
        (Num::D(a), Num::F(b)) => Some((a, exact_f64(b)?, true)),
        (Num::F(a), Num::D(b)) => Some((exact_f64(a)?, b, true)),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
}

/// `x op y` with sympy's number semantics (rationals exact, floats in double precision).
fn arith(op: Op, x: Num, y: Num) -> Result<Num, NotExact> {
    if matches!(op, Op::Div | Op::FloorDiv) && y.f() == 0.0 {
        return Err(NotExact::Invalid);
    }
    if let Some((a, b, long)) = exact_pair(x, y) {
        let r = match op {
            Op::Add => a.add(b),
            Op::Sub => b.mul(Q(-1, 1)).and_then(|b| a.add(b)),
            Op::Mul => a.mul(b),
            Op::Div => b.recip().and_then(|b| a.mul(b)),
            Op::FloorDiv => b.recip().and_then(|b| a.mul(b)).map(|r| Q(r.0.div_euclid(r.1), 1)),
        };
        // Rational arithmetic that overflows falls back to double precision.
        if let Some(r) = r {
            return Ok(if long { Num::D(r) } else { Num::Q(r) });
        }
    }
    let (a, b) = (x.f(), y.f());
    let r = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::FloorDiv => (a / b).floor(),
    };
    if r.is_finite() { Ok(Num::F(r)) } else { Err(NotExact::Invalid) }
}

pub(super) fn exact(e: &Expr) -> Exact {
    use NotExact::*;
    let bin = |op: Op, a: &Expr, b: &Expr| -> Exact {
        let ((x, dx), (y, dy)) = (exact(a)?, exact(b)?);
        Ok((arith(op, x, y)?, dx || dy))
    };
    match e {
        Expr::Int(s) => s.parse::<i128>().map(|n| (Num::Q(Q(n, 1)), false)).map_err(|_| Symbolic),
        Expr::Float(s) => float_literal(s).map(|n| (n, true)).ok_or(Symbolic),
        Expr::NonFinite => Err(Invalid),
        Expr::Imag(_) | Expr::Sym(_) | Expr::Pi => Err(Symbolic),
        Expr::Neg(a) => {
            let (x, d) = exact(a)?;
            Ok((arith(Op::Mul, Num::Q(Q(-1, 1)), x)?, d))
        }
        Expr::Add(a, b) => bin(Op::Add, a, b),
        Expr::Sub(a, b) => bin(Op::Sub, a, b),
        Expr::Mul(a, b) => bin(Op::Mul, a, b),
        Expr::Div(a, b) => bin(Op::Div, a, b),
        Expr::FloorDiv(a, b) => bin(Op::FloorDiv, a, b),
        Expr::Pow(a, b) => {
            let ((x, dx), (y, dy)) = (exact(a)?, exact(b)?);
            Ok((pow(x, y)?, dx || dy))
        }
        Expr::Sqrt(a) => {
            let (x, d) = exact(a)?;
            Ok((pow(x, Num::Q(Q(1, 2)))?, d))
        }
        Expr::Ln(a) => match exact(a)? {
            (Num::Q(Q(1, 1)), d) => Ok((Num::Q(Q(0, 1)), d)),
            (Num::Q(Q(0, _)), _) => Err(Invalid),
            (x @ (Num::F(_) | Num::D(_)), d) if x.f() > 0.0 => Ok((Num::F(x.f().ln()), d)),
            _ => Err(Symbolic),
        },
        Expr::BitAnd(a, b) | Expr::BitOr(a, b) => match (exact(a), exact(b)) {
            (Ok((Num::Q(Q(x, 1)), dx)), Ok((Num::Q(Q(y, 1)), dy))) => {
                let r = if matches!(e, Expr::BitAnd(..)) { x & y } else { x | y };
                Ok((Num::Q(Q(r, 1)), dx || dy))
            }
            _ => Err(Unsupported),
        },
        Expr::Factorial(a, double) => match exact(a)? {
            (Num::Q(x), d) if x.int().is_some_and(|n| (0..=60).contains(&n)) => {
                let step = if *double { 2 } else { 1 };
                let mut acc = Some(1i128);
                let mut k = x.0;
                while k > 1 {
                    acc = acc.and_then(|a| a.checked_mul(k));
                    k -= step;
                }
                acc.map(|a| (Num::Q(Q(a, 1)), d)).ok_or(Symbolic)
            }
            _ => Err(Symbolic),
        },
    }
}

/// `x ** y` as sympy evaluates it on numbers.
fn pow(x: Num, y: Num) -> Result<Num, NotExact> {
    match (x, y) {
        (Num::Q(b) | Num::D(b), Num::Q(e)) if b.0 == 0 && e.0 < 0 => Err(NotExact::Invalid),
        (Num::Q(b) | Num::D(b), Num::Q(Q(n, 1))) => {
            let r = b.powi(n).ok_or(NotExact::Symbolic)?;
            Ok(if matches!(x, Num::D(_)) { Num::D(r) } else { Num::Q(r) })
        }
        (Num::Q(b), Num::Q(e)) => {
            // A rational power is exact only for a perfect power of a non-negative base.
            let k = u32::try_from(e.1).map_err(|_| NotExact::Symbolic)?;
            let root = iroot(b.0, k).zip(iroot(b.1, k)).map(|(n, m)| Q(n, m));
            root.and_then(|r| r.powi(e.0)).map(Num::Q).ok_or(NotExact::Symbolic)
        }
        _ => {
            let (b, e) = (x.f(), y.f());
            if b < 0.0 && e.fract() != 0.0 {
                return Err(NotExact::Symbolic);
            }
            let r = b.powf(e);
            if r.is_finite() { Ok(Num::F(r)) } else { Err(NotExact::Invalid) }
        }
    }
}

/// Whether two exact values are equal as sympy compares their difference with zero.
pub(super) fn exact_equal(x: Num, y: Num) -> bool {
    match exact_pair(x, y) {
        Some((a, b, _)) => a == b,
        None => x.f() - y.f() == 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Num {
        exact(&super::super::expr::parse(s).unwrap()).unwrap().0
    }

    #[test]
    fn literals_and_arithmetic() {
        assert_eq!(float_literal("0.5"), Some(Num::F(0.5)));
        assert_eq!(
            float_literal("0.3333333333333333"),
            Some(Num::D(Q(3333333333333333, 10_000_000_000_000_000)))
        );
        assert_eq!(exact_f64(0.75), Some(Q(3, 4)));
        assert_eq!(exact_f64(-6.0), Some(Q(-6, 1)));
        assert_eq!(val("1/2+1/3"), Num::Q(Q(5, 6)));
        assert_eq!(val("(2/3)^-2"), Num::Q(Q(9, 4)));
        assert_eq!(val("8^(2/3)"), Num::Q(Q(4, 1)));
        assert_eq!(val("sqrt(9/4)"), Num::Q(Q(3, 2)));
        assert_eq!(val("7//2"), Num::Q(Q(3, 1)));
        assert_eq!(val("3!!"), Num::Q(Q(3, 1)));
        assert_eq!(val("0.1+0.2"), Num::F(0.1 + 0.2));
        assert!(exact_equal(val("0.5"), val("1/2")));
        assert!(!exact_equal(val("0.3333333333333333"), val("1/3")));
        assert!(!exact_equal(val("sqrt(0.5)"), val("0.7071067811865476")));
    }

    #[test]
    fn no_exact_value() {
        let e = |s: &str| exact(&super::super::expr::parse(s).unwrap());
        assert_eq!(e("sqrt(2)"), Err(NotExact::Symbolic));
        assert_eq!(e("x+1"), Err(NotExact::Symbolic));
        assert_eq!(e("1/0"), Err(NotExact::Invalid));
        assert_eq!(e("0^-1"), Err(NotExact::Invalid));
        assert_eq!(e("oo"), Err(NotExact::Invalid));
        assert_eq!(e("x&1"), Err(NotExact::Unsupported));
        assert_eq!(e("6&3"), Ok((Num::Q(Q(2, 1)), false)));
        assert_eq!(e("2^200"), Err(NotExact::Symbolic), "overflow falls back to the numeric comparison");
    }

    #[test]
    fn regression_long_float_with_extreme_exponent() {
        // The exponent minus the fraction digits overflowed i32 (a panic in debug builds).
        for s in [
            "1.0000000000000001e-2147483648",
            "1.0000000000000001e2147483647",
            "0.1234567890123456789e-2147483648",
        ] {
            assert_eq!(float_literal(s).map(|n| n.f()), s.parse::<f64>().ok(), "{s}");
        }
        // Through the grader: an answer that is not an integer reaches the exact evaluation.
        let _ = super::super::grade("1.0000000000000001e-2147483648+1.5", "1.5");
    }
}
