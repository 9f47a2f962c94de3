//! Strategies for hostile inputs shared by the targets: text made of pieces that matter to the
//! parsers (LaTeX macros, braces, digits, whitespace, trigger words), each piece possibly repeated
//! into a long run; deep nesting; huge numbers; JSON values of every shape; broken bytes.

use proptest::prelude::*;
use serde_json::Value;

/// Pieces of answers and responses that the grader, the LaTeX parser and the step splitter react to.
const PIECES: &[&str] = &[
    "\\frac",
    "\\dfrac",
    "\\tfrac",
    "\\sqrt",
    "\\sqrt[",
    "\\boxed{",
    "\\boxed",
    "\\fbox{",
    "\\left(",
    "\\right)",
    "\\left\\{",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\\{",
    "\\}",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\begin{array}{cc}",
    "\\end{array}",
    "\\begin{x}",
    "\\end",
    "&",
    "\\\\",
    "\\text{",
    "\\text{ ",
    "\\mbox{",
    "\\textbf{",
    "\\mathrm{",
    "\\textcolor{red}{",
    "\\fcolorbox",
    "\\color{b}",
    "\\not",
    "\\neq",
    "\\pi",
    "\\infty",
    "\\circ",
    "^\\circ",
    "^{\\circ}",
    "\\%",
    "%",
    "\\$",
    "$",
    "\\!",
    "\\,",
    "\\ ",
    "\\cdot",
    "\\times",
    "\\hat",
    "\\operatorname{lcm}",
    "\\verb",
    "\\",
    "%(2)s",
    "%s",
    "^",
    "_",
    "^{",
    "**",
    "//",
    "!",
    "!!",
    "=",
    "<",
    ">",
    "/",
    "-",
    "--",
    "---",
    "+",
    "*",
    ",",
    ",\\!",
    ".",
    " .",
    "{.",
    "0",
    "1",
    "7",
    "12",
    "0.5",
    ".5",
    "1,000",
    "1,0000",
    "1e3",
    "1e-2147483648",
    "1.0000000000000001e99",
    "1_0",
    "2j",
    "0x1",
    "inf",
    "nan",
    "oo",
    "zoo",
    "pi",
    "sqrt",
    "sqrt(",
    "ln(",
    "e",
    "x",
    "y",
    "xy",
    "i",
    "abc",
    " or ",
    " and ",
    "million",
    "cm",
    "degrees",
    "feet",
    "yard^2",
    " ",
    "  ",
    "\n",
    "\t",
    "\r",
    "\u{a0}",
    "\u{3000}",
    "Wait",
    "Wait,",
    "Waiting",
    "Hmm",
    "</think>",
    "<think>",
    "< /think >",
    "#### ",
    "####",
    "é",
    "e\u{301}",
    "∞",
    "√",
    "π",
    "\u{663}",
    "\u{200d}",
    "🙂",
    "\u{fffd}",
    "\0",
];

/// How often a piece repeats: mostly once, sometimes into a run long enough that a super-linear
/// path shows (tens of thousands of characters).
fn repeat() -> impl Strategy<Value = usize> {
    prop_oneof![24 => Just(1usize), 4 => 2usize..40, 2 => 40usize..2_000, 1 => 10_000usize..60_000]
}

/// One piece: a known one, digits (up to a few hundred, for huge numbers), letters, or any char.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => proptest::sample::select(PIECES).prop_map(str::to_string),
        2 => "[0-9]{1,400}",
        1 => "[a-zA-Z]{1,6}",
        1 => any::<char>().prop_map(String::from),
    ]
}

/// Hostile text: up to 24 pieces, each possibly repeated, capped near 200 kB.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::collection::vec((piece(), repeat()), 0..24).prop_map(|parts| {
            let mut out = String::new();
            for (p, n) in parts {
                let room = (200_000usize.saturating_sub(out.len()) / p.len().max(1)).min(n);
                out.push_str(&p.repeat(room));
            }
            out
        }),
        1 => nested(),
        1 => "\\PC{0,64}",
    ]
    .boxed()
}

/// Balanced or unbalanced nesting: `open` repeated `depth` times around `middle`, then `close`
/// repeated `depth` (or fewer) times.
pub fn nested() -> impl Strategy<Value = String> {
    let opens = [
        "{",
        "\\frac{",
        "\\sqrt{",
        "\\sqrt[",
        "(",
        "[",
        "\\(",
        "\\begin{a}",
        "\\left(",
        "\\text{",
        "-",
        "2^",
    ];
    let closes = ["}", "}{1}", "]", ")", "\\)", "\\end{a}", "\\right)", ""];
    (
        proptest::sample::select(opens.to_vec()),
        piece(),
        proptest::sample::select(closes.to_vec()),
        prop_oneof![1usize..300, 300usize..20_000],
        0.0f64..=1.0,
    )
        .prop_map(|(open, middle, close, depth, closed)| {
            let closing = (depth as f64 * closed) as usize;
            format!("{}{middle}{}", open.repeat(depth), close.repeat(closing))
        })
}

/// A JSON scalar of any kind, with the extremes parsers trip on.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0u64, 1, 2, 255, 256, 4096, u64::from(u32::MAX), 1 << 40, u64::MAX])
            .prop_map(Value::from),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        text().prop_map(|s| Value::String(s.chars().take(2_000).collect())),
    ]
}

/// A JSON value up to a few levels deep.
pub fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-z_]{0,12}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Bytes that are mostly `valid` (a file a parser accepts) with damage: cut short, bytes flipped,
/// hostile text spliced in, or replaced by raw bytes.
pub fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len().max(1);
    prop_oneof![
        2 => Just(valid.clone()),
        2 => (0..len).prop_map({ let v = valid.clone(); move |n| v[..n.min(v.len())].to_vec() }),
        3 => prop::collection::vec((0..len, any::<u8>()), 1..8).prop_map({
            let v = valid.clone();
            move |flips| {
                let mut v = v.clone();
                for (at, b) in flips {
                    if let Some(x) = v.get_mut(at) {
                        *x = b;
                    }
                }
                v
            }
        }),
        2 => (0..len, text()).prop_map({
            let v = valid.clone();
            move |(at, t)| {
                let at = at.min(v.len());
                [&v[..at], t.as_bytes(), &v[at..]].concat()
            }
        }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => nesting_bytes(),
    ]
}

/// JSON nested far deeper than any parser should recurse.
pub fn nesting_bytes() -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(&["[", "{\"a\":", "[{\"b\":"][..]), 100usize..100_000)
        .prop_map(|(open, depth)| open.repeat(depth).into_bytes())
}
