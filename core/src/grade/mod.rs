//! Answer extraction and grading (spec section 4).
//!
//! The verdicts follow the MATH-dataset convention of the reference grader (PRM800K's `grade_answer`,
//! as packaged in `mathruler` and used by EasyR1):
//!
//! 1. Both answers are normalised the Hendrycks MATH way ([`normalize::mathd`]); equal strings match.
//! 2. Both are normalised again the PRM800K way ([`normalize::normalize`]: units, `\text{}`, `%`, `$`,
//!    LaTeX to plain text, spaces, case, canonical integers); equal strings match.
//! 3. Otherwise the answers are split into elements when the ground truth is a tuple or interval
//!    (`(..)`/`[..]` with commas); brackets must then match and elements compare in order:
//!    - two plain fractions `a/b` must be identical strings (`6/8` is not `3/4`);
//!    - if exactly one side is an integer they differ (an integer needs an exact match);
//!    - else the elements are equal when their difference is zero (module `equiv`).
//!
//! A response without a `\boxed{}` answer is never graded correct: arbitrary text is not an answer.

mod equiv;
mod expr;
mod extract;
mod latex;
mod latex_macros;
pub mod normalize;
mod number;

#[cfg(test)]
mod fixture_tests;

pub use extract::{extract_boxed, parse_ground_truth};

use normalize::{mathd, normalize, str_is_int, strip_properly_formatted_commas};

const TUPLE_CHARS: [char; 4] = ['(', ')', '[', ']'];

/// The elements of a tuple or interval written `(a, b)` or `[a, b)`, else the whole answer as one.
fn split_tuple(expr: &str) -> Vec<String> {
    let expr = strip_properly_formatted_commas(expr);
    let chars: Vec<char> = expr.chars().collect();
    match chars.as_slice() {
        [] => Vec::new(),
        [first, inner @ .., last]
            if chars.len() > 2
                && TUPLE_CHARS.contains(first)
                && TUPLE_CHARS.contains(last)
                && !inner.iter().any(|c| TUPLE_CHARS.contains(c)) =>
        {
            inner.iter().collect::<String>().split(',').map(|e| e.trim().to_string()).collect()
        }
        _ => vec![expr],
    }
}

/// A plain fraction such as `3/4` or `-10/3` (the reference's `^-?[0-9]+.?/0*[1-9][0-9]*.?$`).
fn is_frac(s: &str) -> bool {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let c: Vec<char> = s.chars().collect();
    let start = usize::from(c.first() == Some(&'-'));
    let num_end = c[start..].iter().position(|ch| !ch.is_ascii_digit()).map_or(c.len(), |p| start + p);
    // `[0-9]+.?/`: the slash follows the digits, or one more character of any kind.
    (start + 1..=num_end).any(|k| {
        [k, k + 1].into_iter().any(|slash| {
            c.get(slash) == Some(&'/') && (slash == k || c[k] != '\n') && denominator_ok(&c[slash + 1..])
        })
    })
}

/// `0*[1-9][0-9]*.?$`: a digit string that is not all zeros, optionally followed by one character.
fn denominator_ok(d: &[char]) -> bool {
    let digits_ok = |d: &[char]| d.iter().all(char::is_ascii_digit) && d.iter().any(|&c| c != '0');
    digits_ok(d) || d.split_last().is_some_and(|(last, rest)| *last != '\n' && digits_ok(rest))
}

/// Whether `given` answers a question whose answer is `truth` (see the module docs for the rules).
pub fn grade(given: &str, truth: &str) -> bool {
    if mathd(truth) == mathd(given) {
        return true;
    }
    let (truth, given) = (normalize(truth), normalize(given));
    if truth == given {
        return true;
    }
    if given.is_empty() {
        return false;
    }
    let (t_elems, g_elems) = (split_tuple(&truth), split_tuple(&given));
    if t_elems.len() > 1
        && (truth.chars().next() != given.chars().next() || truth.chars().last() != given.chars().last())
    {
        return false;
    }
    if t_elems.len() != g_elems.len() {
        return false;
    }
    t_elems.iter().zip(&g_elems).all(|(t, g)| {
        if is_frac(t) && is_frac(g) {
            // Unreduced fractions are not accepted: no simplification between two fractions.
            t == g
        } else if str_is_int(t) != str_is_int(g) {
            false
        } else {
            equiv::equal_under_sympy(t, g)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(split_tuple("(1,2)"), vec!["1", "2"]);
        assert_eq!(split_tuple("[0,1)"), vec!["0", "1"]);
        assert_eq!(split_tuple("(1,000,2)"), vec!["1000", "2"]);
        assert_eq!(split_tuple("((1,2))"), vec!["((1,2))"]);
        assert_eq!(split_tuple("()"), vec!["()"]);
        assert!(is_frac("3/4") && is_frac("-10/3") && is_frac("1)/2") && is_frac("3/4x"));
        assert!(!is_frac("3/0") && !is_frac("x/4") && !is_frac("3/4xy") && !is_frac("1+1/2"));
    }

    #[test]
    fn verdicts() {
        let yes = [
            ("\\frac{1}{4}", "0.25"),
            ("\\sqrt{8}", "2\\sqrt{2}"),
            ("50\\%", "50"),
            ("(3, -1)", "(3,-1)"),
            ("\\frac{\\pi}{2}", "\\pi/2"),
            ("1.5", "\\frac32"),
            ("10,000", "10000"),
            ("45^{\\circ}", "45"),
            ("y = 2x+1", "2x+1"),
            ("x^2-1", "(x-1)(x+1)"),
            ("-\\frac{1}{2}", "-0.5"),
        ];
        for (a, b) in yes {
            assert!(grade(a, b), "{a} vs {b}");
        }
        let no = [
            ("\\frac{2}{4}", "\\frac{1}{2}"),
            ("[1, 5]", "(1, 5)"),
            ("(1, 2, 3)", "(1, 2)"),
            ("2.5", "2"),
            ("", ""),
            ("x+1", "x+2"),
            ("\\sqrt{2}", "1.41421356237"),
        ];
        for (a, b) in no {
            assert!(!grade(a, b) || a.is_empty(), "{a} vs {b}");
        }
        assert!(grade("", ""), "the reference accepts an empty answer for an empty truth");
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let deep = "(".repeat(20_000) + "1" + &")".repeat(20_000);
        let braces = "\\frac{".repeat(5_000) + "1";
        let chain = "1+".repeat(20_000) + "1";
        for s in [
            deep.as_str(),
            braces.as_str(),
            chain.as_str(),
            "\\",
            "\\sqrt",
            "}{",
            "^^",
            "1/0",
            "9^9^9",
            "é\u{301}",
        ] {
            let _ = grade(s, "1");
            let _ = grade("x", s);
            let _ = extract_boxed(s);
            let _ = parse_ground_truth(s);
        }
        assert!(!grade(&("2^".repeat(50) + "2"), "4"));
    }
}
