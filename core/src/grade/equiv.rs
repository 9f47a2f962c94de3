//! "The difference simplifies to zero": the reference grader asks sympy whether
//! `simplify((truth) - (given)) == 0`. This module answers the same question without a CAS:
//!
//! - Numbers only (integers, fractions, decimals, integer powers, perfect-square roots): evaluated
//!   exactly as sympy does. Rationals stay exact; a decimal literal is a binary float (as sympy's
//!   15-digit `Float`), or an exact decimal when it has more digits than a double holds, so `0.5`
//!   equals `1/2` while `0.333` and `0.3333333333333333` do not equal `1/3`.
//! - Anything with variables, `pi`, logarithms or irrational roots: evaluated in complex floating point
//!   at several seeded random points and compared within the propagated rounding error (a few 1e-14
//!   relative: a tolerance like 1e-9 would accept 8-digit coincidences that sympy rejects). Complex
//!   points keep identities that only hold for positive reals (`sqrt(x^2) = x`) false, as in sympy,
//!   where symbols carry no assumptions.
//! - A decimal never cancels an exact irrational: sympy keeps `Float`s apart from `pi` or `sqrt(2)`,
//!   so `3.14159265359` is not `\pi`, `2^{0.5}` is not `\sqrt{2}` and `x^{0.5}` is not `\sqrt{x}`,
//!   while `0.5\sqrt{2}` equals `\frac{\sqrt{2}}{2}` (same irrational, equal coefficients).

use super::expr::{Expr, parse};
use super::number::{NotExact, exact, exact_equal};

/// Seed of the random evaluation points, fixed so verdicts are reproducible.
const SEED: u64 = 0x5eed_57e9_9a0c_0001;
/// Number of random points an identity must hold at.
const POINTS: usize = 8;
/// How many times the propagated rounding-error bound a difference may reach and still count as 0.
const SAFETY: f64 = 64.0;

/// Number of powers of a non-numeric base with a decimal in the exponent (`x^0.5`): sympy keeps
/// `x**0.5` apart from `sqrt(x)`, so such powers only match the same powers on the other side.
fn float_powers(e: &Expr) -> usize {
    let own = match e {
        Expr::Pow(a, b) => usize::from(exact(a).is_err() && has_float(b)),
        _ => 0,
    };
    own + e.children().into_iter().map(float_powers).sum::<usize>()
}

/// Whether a root or logarithm is applied to a decimal (`sqrt(2.0)`, `sqrt(0.5x)`) or a power of
/// a decimal is fractional: sympy evaluates the numeric part to a `Float`, which never cancels an
/// exact irrational.
fn floatified(e: &Expr) -> bool {
    let own = match e {
        Expr::Sqrt(a) | Expr::Ln(a) => has_float(a),
        Expr::Pow(a, b) => (has_float(a) || has_float(b)) && exact(e).is_ok(),
        _ => false,
    };
    own || e.children().into_iter().any(floatified)
}

/// Whether `e` has an exact irrational number in it (`pi`, `sqrt(2)`, `ln(3)`, `2^(1/3)`, and the
/// `sqrt(2)` that sympy pulls out of `sqrt(x/2)`: a root whose radicand is irrational with every
/// variable set to 1).
fn exact_irrational(e: &Expr) -> bool {
    let own = match e {
        Expr::Pi => true,
        Expr::Sqrt(_) | Expr::Ln(_) | Expr::Pow(..) if !has_float(e) => {
            exact(&ones(e)) == Err(NotExact::Symbolic) && !matches!(e, Expr::Pow(_, b) if has_sym(b))
        }
        _ => false,
    };
    own || e.children().into_iter().any(exact_irrational)
}

/// `e` with every variable replaced by 1.
fn ones(e: &Expr) -> Expr {
    let one = |a: &Expr| Box::new(ones(a));
    match e {
        Expr::Sym(_) => Expr::Int("1".into()),
        Expr::Neg(a) => Expr::Neg(one(a)),
        Expr::Sqrt(a) => Expr::Sqrt(one(a)),
        Expr::Ln(a) => Expr::Ln(one(a)),
        Expr::Factorial(a, d) => Expr::Factorial(one(a), *d),
        Expr::Add(a, b) => Expr::Add(one(a), one(b)),
        Expr::Sub(a, b) => Expr::Sub(one(a), one(b)),
        Expr::Mul(a, b) => Expr::Mul(one(a), one(b)),
        Expr::Div(a, b) => Expr::Div(one(a), one(b)),
        Expr::FloorDiv(a, b) => Expr::FloorDiv(one(a), one(b)),
        Expr::Pow(a, b) => Expr::Pow(one(a), one(b)),
        Expr::BitAnd(a, b) => Expr::BitAnd(one(a), one(b)),
        Expr::BitOr(a, b) => Expr::BitOr(one(a), one(b)),
        other => other.clone(),
    }
}

fn has_sym(e: &Expr) -> bool {
    matches!(e, Expr::Sym(_) | Expr::Imag(_)) || e.children().into_iter().any(has_sym)
}

fn has_float(e: &Expr) -> bool {
    matches!(e, Expr::Float(_)) || e.children().into_iter().any(has_float)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct C(f64, f64);

impl C {
    fn add(self, o: C) -> C {
        C(self.0 + o.0, self.1 + o.1)
    }
    fn mul(self, o: C) -> C {
        C(self.0 * o.0 - self.1 * o.1, self.0 * o.1 + self.1 * o.0)
    }
    fn div(self, o: C) -> C {
        let d = o.0 * o.0 + o.1 * o.1;
        C((self.0 * o.0 + self.1 * o.1) / d, (self.1 * o.0 - self.0 * o.1) / d)
    }
    fn abs(self) -> f64 {
        self.0.hypot(self.1)
    }
    fn ln(self) -> C {
        C(self.abs().ln(), self.1.atan2(self.0))
    }
    fn exp(self) -> C {
        let m = self.0.exp();
        C(m * self.1.cos(), m * self.1.sin())
    }
    fn powc(self, e: C) -> C {
        if e.1 == 0.0 && e.0.fract() == 0.0 && e.0.abs() <= 64.0 {
            // Integer powers by multiplication: exact for 0 ** n and more accurate than exp/log.
            let mut r = C(1.0, 0.0);
            for _ in 0..e.0.abs() as u32 {
                r = r.mul(self);
            }
            return if e.0 < 0.0 { C(1.0, 0.0).div(r) } else { r };
        }
        if self == C(0.0, 0.0) {
            return if e.0 > 0.0 { self } else { C(f64::NAN, 0.0) };
        }
        e.mul(self.ln()).exp()
    }
    fn finite(self) -> bool {
        self.0.is_finite() && self.1.is_finite()
    }
}

/// SplitMix64, seeded: the random points are the same on every run and platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Complex value of `e` with variables from `vars`, and a running bound on its rounding error
/// (first-order error propagation, so that a cancellation such as `(-2 + sqrt(3))^9` is judged by
/// the error it really carries). `None` for what is not evaluated.
fn numeric(e: &Expr, vars: &[(String, C)]) -> Option<(C, f64)> {
    let u = |v: C| v.abs() * f64::EPSILON;
    let two = |a: &Expr, b: &Expr| Some((numeric(a, vars)?, numeric(b, vars)?));
    let (v, err) = match e {
        Expr::Int(s) | Expr::Float(s) => {
            let v = C(s.parse().ok()?, 0.0);
            // Integers below 2^53 are exact in a double.
            let exact_int = matches!(e, Expr::Int(_)) && v.0.abs() < 9.0e15;
            (v, if exact_int { 0.0 } else { u(v) })
        }
        Expr::Imag(x) => (C(0.0, *x), 0.0),
        Expr::Sym(name) => (vars.iter().find(|(n, _)| n == name)?.1, 0.0),
        Expr::Pi => (C(std::f64::consts::PI, 0.0), f64::EPSILON * 4.0),
        Expr::NonFinite => (C(f64::NAN, 0.0), 0.0),
        Expr::Neg(a) => {
            let (x, ex) = numeric(a, vars)?;
            (x.mul(C(-1.0, 0.0)), ex)
        }
        Expr::Add(a, b) | Expr::Sub(a, b) => {
            let ((x, ex), (y, ey)) = two(a, b)?;
            let y = if matches!(e, Expr::Sub(..)) { y.mul(C(-1.0, 0.0)) } else { y };
            let r = x.add(y);
            (r, ex + ey + u(r))
        }
        Expr::Mul(a, b) => {
            let ((x, ex), (y, ey)) = two(a, b)?;
            let r = x.mul(y);
            (r, x.abs() * ey + y.abs() * ex + ex * ey + u(r))
        }
        Expr::Div(a, b) => {
            let ((x, ex), (y, ey)) = two(a, b)?;
            let r = x.div(y);
            (r, (ex + r.abs() * ey) / (y.abs() - ey).max(f64::MIN_POSITIVE) + u(r))
        }
        Expr::FloorDiv(a, b) => {
            let ((x, _), (y, _)) = two(a, b)?;
            let r = x.div(y);
            (r.1 == 0.0).then(|| (C(r.0.floor(), 0.0), 0.0))?
        }
        Expr::Pow(a, _) | Expr::Sqrt(a) => {
            let (x, ex) = numeric(a, vars)?;
            let (y, ey) = match e {
                Expr::Pow(_, b) => numeric(b, vars)?,
                _ => (C(0.5, 0.0), 0.0),
            };
            let r = x.powc(y);
            // d(x^y) = y x^(y-1) dx + x^y ln(x) dy
            let dx = if x.abs() > 0.0 { r.abs() * y.abs() / x.abs() * ex } else { ex };
            let dy = if ey > 0.0 && r.abs() > 0.0 { r.abs() * x.ln().abs() * ey } else { 0.0 };
            (r, dx + dy + 4.0 * u(r))
        }
        Expr::Ln(a) => {
            let (x, ex) = numeric(a, vars)?;
            let r = x.ln();
            (r, if ex > 0.0 { ex / x.abs() } else { 0.0 } + u(r))
        }
        Expr::Factorial(..) => match exact(e) {
            Ok((n, _)) => (C(n.f(), 0.0), n.f().abs() * f64::EPSILON),
            _ => return None,
        },
        Expr::BitAnd(..) | Expr::BitOr(..) => return None,
    };
    Some((v, err))
}

/// Compares at seeded random complex points (modulus in [0.5, 1.5], any argument) for the variables:
/// equal when every point with finite values agrees within the propagated rounding error.
fn numeric_equal(a: &Expr, b: &Expr) -> bool {
    let mut names = Vec::new();
    collect_syms(a, &mut names);
    collect_syms(b, &mut names);
    let mut rng = SplitMix(SEED);
    let mut valid = 0;
    for _ in 0..POINTS {
        let vars: Vec<(String, C)> = names
            .iter()
            .map(|n| {
                let (r, t) = (0.5 + rng.next(), std::f64::consts::TAU * rng.next());
                (n.clone(), C(r * t.cos(), r * t.sin()))
            })
            .collect();
        let (Some((x, ex)), Some((y, ey))) = (numeric(a, &vars), numeric(b, &vars)) else {
            // Not evaluated here (a factorial of a variable): sympy still cancels identical terms.
            return a == b;
        };
        if !(x.finite() && y.finite() && ex.is_finite() && ey.is_finite()) {
            continue;
        }
        valid += 1;
        let diff = x.add(y.mul(C(-1.0, 0.0))).abs();
        if diff > SAFETY * (ex + ey) + f64::MIN_POSITIVE {
            return false;
        }
    }
    valid > 0
}

fn collect_syms(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Sym(n) if !out.contains(n) => out.push(n.clone()),
        _ => {}
    }
    for c in e.children() {
        collect_syms(c, out);
    }
}

/// The reference's guard against expressions sympy might hang on: more than two distinct letters
/// (not counting `sqrt` and `frac`), `^{`, `^(`, stacked powers or powers with two-digit exponents.
pub(crate) fn should_allow_eval(expr: &str) -> bool {
    let letters: std::collections::BTreeSet<char> =
        expr.replace("sqrt", "").replace("frac", "").chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 2 || expr.contains("^{") || expr.contains("^(") {
        return false;
    }
    let c: Vec<char> = expr.chars().collect();
    for (i, _) in c.iter().enumerate().filter(|(_, ch)| **ch == '^') {
        let run = c[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if run >= 2 || run >= 1 && c.get(i + 1 + run) == Some(&'^') {
            return false;
        }
    }
    true
}

/// Whether `(truth) - (given)` is zero, as the reference decides with sympy.
pub(crate) fn equal_under_sympy(truth: &str, given: &str) -> bool {
    let diff = format!("({truth})-({given})");
    if !should_allow_eval(&diff) {
        return false;
    }
    let Some(e) = parse(&diff) else { return false };
    let (a, b) = match e {
        Expr::Sub(a, b) => (*a, *b),
        other => (other, Expr::Int("0".into())),
    };
    match (exact(&a), exact(&b)) {
        (Ok((x, _)), Ok((y, _))) => exact_equal(x, y),
        (Err(NotExact::Invalid | NotExact::Unsupported), _)
        | (_, Err(NotExact::Invalid | NotExact::Unsupported)) => false,
        // A decimal number cannot cancel an irrational or symbolic expression in sympy.
        (Ok((_, true)), Err(_)) | (Err(_), Ok((_, true))) => false,
        _ if (float_powers(&a) == 0) != (float_powers(&b) == 0) => false,
        _ if floatified(&a) != floatified(&b)
            && (floatified(&a) && exact_irrational(&b) || floatified(&b) && exact_irrational(&a)) =>
        {
            false
        }
        _ => numeric_equal(&a, &b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers() {
        assert!(equal_under_sympy("1/2", "0.5"));
        assert!(equal_under_sympy("3/2", "1+1/2"));
        assert!(!equal_under_sympy("1/3", "0.333"));
        assert!(!equal_under_sympy("1/3", "0.3333333333333333"));
        assert!(!equal_under_sympy("0.3", "0.1+0.2"), "binary floats, as sympy");
        assert!(equal_under_sympy("2", "sqrt(4)"));
        assert!(equal_under_sympy("120", "5!"));
        assert!(!equal_under_sympy("1/0", "1/0"));
        assert!(equal_under_sympy("8^(2)", "64") || !should_allow_eval("(8^(2))-(64)"));
    }

    #[test]
    fn symbolic_and_irrational() {
        assert!(equal_under_sympy("(x+1)^2", "x^2+2x+1"));
        assert!(equal_under_sympy("sqrt(12)", "2sqrt(3)"));
        assert!(equal_under_sympy("sqrt(2)/2", "1/sqrt(2)"));
        assert!(equal_under_sympy("(x^2-1)/(x-1)", "x+1"));
        assert!(!equal_under_sympy("sqrt(x^2)", "x"));
        assert!(!equal_under_sympy("pi", "3.14"));
        assert!(!equal_under_sympy("pi", "3.14159265358979"));
        assert!(equal_under_sympy("sqrt(2)/2", "0.5sqrt(2)"));
        assert!(!equal_under_sympy("x+1", "x+2"));
        assert!(!equal_under_sympy("a", "b"));
        assert!(!equal_under_sympy("abc", "abc"), "three letters: not evaluated");
        assert!(equal_under_sympy("2x", "x2"));
        assert!(equal_under_sympy("(-8)^(1/3)", "2(-1)^(1/3)") || !should_allow_eval("^("));
    }

    #[test]
    fn sympy_float_semantics() {
        assert!(!equal_under_sympy("sqrt(x)", "x^0.5"));
        assert!(!equal_under_sympy("2^0.5", "1.4142135623730951"));
        assert!(!equal_under_sympy("sqrt(0.5)", "0.7071067811865476"));
        assert!(!equal_under_sympy("sqrt(a*1/2)", "sqrt(a*0.5)"));
        assert!(equal_under_sympy("sqrt(2)sqrt(0.5)", "(sqrt(2)sqrt(0.5))"));
        assert!(equal_under_sympy("0.5pi", "pi/2"));
        assert!(equal_under_sympy("y!", "(y!)"), "identical terms cancel even unevaluated");
        assert!(!equal_under_sympy("-(-2+sqrt(3))^9", "71198701/10000000000000"), "an 8-digit coincidence");
        assert!(equal_under_sympy("(x+1)^9", "(1+x)^9"));
    }

    #[test]
    fn regression_deep_expressions_are_not_evaluated() {
        // A 400-term sum (400 levels, within the token limit) overflowed a 2 MiB stack in the exact
        // evaluation of a debug build; nesting by parentheses, signs or powers did in the parser.
        let on_small_stack = |s: String| {
            let parsed = std::thread::Builder::new().stack_size(1 << 21).spawn(move || parse(&s).is_some());
            parsed.unwrap().join().unwrap()
        };
        let sum = |n: usize| "1+".repeat(n) + "1";
        assert!(!on_small_stack(sum(400)) && on_small_stack(sum(90)), "ninety levels still parse");
        for s in ["(".repeat(450) + "1" + &")".repeat(450), "-".repeat(900) + "1", "x**".repeat(300) + "x"] {
            assert!(!on_small_stack(s));
        }
        assert!(!equal_under_sympy("401.5", &sum(400)));
    }

    #[test]
    fn guard() {
        assert!(should_allow_eval("(x^2)-(y)"));
        assert!(!should_allow_eval("x^10"));
        assert!(!should_allow_eval("x^2^3"));
        assert!(!should_allow_eval("2^{x}"));
        assert!(!should_allow_eval("(inf)-(inf)"));
        assert!(should_allow_eval("sqrt(x)-frac"));
    }
}
