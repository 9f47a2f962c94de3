//! What each LaTeX macro takes and renders as, following pylatexenc 2.10's `latexwalker` and
//! `latex2text` defaults: argument specs, templates (`\frac` -> `%s/%s`), text macros, accents, and a
//! table of symbol macros with their single character (generated from pylatexenc's tables). A macro
//! known nowhere here renders as nothing, as there.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::latex::{LatexError, Node, render};

/// `name rendering` pairs separated by single spaces.
const SYMBOLS: &str = "\
oe œ OE Œ ae æ AE Æ aa å AA Å o ø O Ø ss ß L Ł l ł i ı j ȷ textquoteleft ‘ textquoteright ’ \
textquotedblright ” textquotedblleft “ textendash – textemdash — textpm ± textmp ∓ texteuro € \
backslash \\ textbackslash \\ hbar ħ ell ℓ forall ∀ complement ∁ partial ∂ exists ∃ nexists ∄ \
varnothing ∅ emptyset ∅ aleph ℵ nabla ∇ in ∈ notin ∉ ni ∋ prod ∏ coprod ∐ sum ∑ setminus ∖ \
smallsetminus ∖ ast ∗ circ ∘ bullet ∙ propto ∝ infty ∞ parallel ∥ nparallel ∦ wedge ∧ vee ∨ \
cap ∩ cup ∪ int ∫ iint ∬ iiint ∭ oint ∮ sim ∼ backsim ∽ simeq ≃ approx ≈ neq ≠ equiv ≡ le ≤ ge ≥ \
leq ≤ geq ≥ leqslant ⩽ geqslant ⩾ leqq ≦ geqq ≧ lneqq ≨ gneqq ≩ ll ≪ gg ≫ nless ≮ ngtr ≯ nleq ≰ \
ngeq ≱ lesssim ≲ gtrsim ≳ lessgtr ≶ gtrless ≷ prec ≺ succ ≻ preceq ≼ succeq ≽ precsim ≾ \
succsim ≿ nprec ⊀ nsucc ⊁ subset ⊂ supset ⊃ subseteq ⊆ supseteq ⊇ nsubseteq ⊈ nsupseteq ⊉ \
subsetneq ⊊ supsetneq ⊋ cdot · times × otimes ⊗ oplus ⊕ bigotimes ⊗ bigoplus ⊕ prime ' dag † \
dagger † pm ± mp ∓ ldots … cdots ⋯ ddots ⋱ iddots ⋰ vdots ⋮ dots … dotsc … dotsb … dotsm … \
dotsi … dotso … langle ⟨ rangle ⟩ lvert | rvert | vert | lVert ‖ rVert ‖ Vert ‖ mid | nmid ∤ \
uparrow ↑ downarrow ↓ rightarrow → to → leftarrow ← longrightarrow ⟶ longleftarrow ⟵ alpha α \
Alpha Α beta β Beta Β gamma γ Gamma Γ delta δ Delta Δ epsilon ϵ Epsilon Ε zeta ζ Zeta Ζ eta η \
Eta Η theta θ Theta Θ iota ι Iota Ι kappa κ Kappa Κ lambda λ Lambda Λ mu μ Mu Μ nu ν Nu Ν xi ξ \
Xi Ξ omicron ο Omicron Ο pi π Pi Π rho ρ Rho Ρ sigma σ Sigma Σ tau τ Tau Τ upsilon υ Upsilon Υ \
phi ϕ Phi Φ chi χ Chi Χ psi ψ Psi Ψ omega ω Omega Ω varepsilon ε vartheta ϑ varpi ϖ varrho ϱ \
varsigma ς varphi φ textasciicircum ˆ textasciitilde ~ textexclamdown ¡ textcent ¢ \
textsterling £ textcurrency ¤ textyen ¥ textbrokenbar ¦ textsection § textasciidieresis ¨ \
textcopyright © textordfeminine ª guillemotleft « textlnot ¬ textregistered ® textasciimacron ¯ \
textdegree ° texttwosuperior ² textthreesuperior ³ textasciiacute ´ textmu µ textparagraph ¶ \
textperiodcentered ˙ textonesuperior ¹ textordmasculine º guillemotright » textonequarter ¼ \
textonehalf ½ textthreequarters ¾ textquestiondown ¿ DH Ð texttimes × TH Þ dh ð textdiv ÷ th þ \
DJ Đ dj đ IJ Ĳ ij ĳ NG Ŋ ng ŋ textflorin ƒ texthvlig ƕ textnrleg ƞ textschwa ə textphi ɸ \
textglotstop ʔ textturnk ʞ textasciicaron ˇ textasciibreve ˘ textacutedbl ˝ varkappa ϰ \
backepsilon ϶ CYRYO Ё CYRDJE Ђ CYRIE Є CYRDZE Ѕ CYRII І CYRYI Ї CYRJE Ј CYRLJE Љ CYRNJE Њ \
CYRTSHE Ћ CYRUSHRT Ў CYRDZHE Џ CYRA А CYRB Б CYRV В CYRG Г CYRD Д CYRE Е CYRZH Ж CYRZ З CYRI И \
CYRISHRT Й CYRK К CYRL Л CYRM М CYRN Н CYRO О CYRP П CYRR Р CYRS С CYRT Т CYRU У CYRF Ф CYRH Х \
CYRC Ц CYRCH Ч CYRSH Ш CYRSHCH Щ CYRHRDSN Ъ CYRERY Ы CYRSFTSN Ь CYREREV Э CYRYU Ю CYRYA Я cyra а \
cyrb б cyrv в cyrg г cyrd д cyre е cyrzh ж cyrz з cyri и cyrishrt й cyrk к cyrl л cyrm м cyrn н \
cyro о cyrp п cyrr р cyrs с cyrt т cyru у cyrf ф cyrh х cyrc ц cyrch ч cyrsh ш cyrshch щ \
cyrhrdsn ъ cyrery ы cyrsftsn ь cyrerev э cyryu ю cyrya я cyryo ё cyrdje ђ cyrie є cyrdze ѕ \
cyrii і cyryi ї cyrje ј cyrlje љ cyrnje њ cyrtshe ћ cyrushrt ў cyrdzhe џ CYRYAT Ѣ cyryat ѣ \
CYRBYUS Ѫ cyrbyus ѫ CYRFITA Ѳ cyrfita ѳ CYRIZH Ѵ cyrizh ѵ CYRSEMISFTSN Ҍ cyrsemisftsn ҍ \
CYRRTICK Ҏ cyrrtick ҏ CYRGUP Ґ cyrgup ґ CYRGHCRS Ғ cyrghcrs ғ CYRGHK Ҕ cyrghk ҕ CYRZHDSC Җ \
cyrzhdsc җ CYRZDSC Ҙ cyrzdsc ҙ CYRKDSC Қ cyrkdsc қ CYRKVCRS Ҝ cyrkvcrs ҝ CYRKHCRS Ҟ cyrkhcrs ҟ \
CYRKBEAK Ҡ cyrkbeak ҡ CYRNDSC Ң cyrndsc ң CYRNG Ҥ cyrng ҥ CYRPHK Ҧ cyrphk ҧ CYRABHHA Ҩ \
cyrabhha ҩ CYRSDSC Ҫ cyrsdsc ҫ CYRTDSC Ҭ cyrtdsc ҭ CYRY Ү cyry ү CYRYHCRS Ұ cyryhcrs ұ CYRHDSC Ҳ \
cyrhdsc ҳ CYRTETSE Ҵ cyrtetse ҵ CYRCHRDSC Ҷ cyrchrdsc ҷ CYRCHVCRS Ҹ cyrchvcrs ҹ CYRSHHA Һ \
cyrshha һ CYRABHCH Ҽ cyrabhch ҽ CYRABHCHDSC Ҿ cyrabhchdsc ҿ CYRpalochka Ӏ CYRKHK Ӄ cyrkhk ӄ \
CYRLDSC Ӆ cyrldsc ӆ CYRNHK Ӈ cyrnhk ӈ CYRCHLDSC Ӌ cyrchldsc ӌ CYRMDSC Ӎ cyrmdsc ӎ CYRAE Ӕ \
cyrae ӕ CYRSCHWA Ә cyrschwa ә CYRABHDZE Ӡ cyrabhdze ӡ CYROTLD Ө cyrotld ө CYRGDSC Ӷ cyrgdsc ӷ \
CYRGDSCHCRS Ӻ cyrgdschcrs ӻ CYRHHK Ӽ cyrhhk ӽ CYRHHCRS Ӿ cyrhhcrs ӿ textbaht ฿ \
textcompwordmark \u{200c} quotesinglbase ‚ quotedblbase „ textdagger † textdaggerdbl ‡ textbullet • \
textellipsis … textperthousand ‰ textpertenthousand ‱ backprime ‵ guilsinglleft ‹ \
guilsinglright › textreferencemark ※ textinterrobang ‽ textfractionsolidus ⁄ \
textasteriskcentered ⁎ textdiscount ⁒ nolinebreak \u{2060} textcolonmonetary ₡ textlira ₤ textnaira ₦ \
textwon ₩ textdong ₫ textpeso ₱ textcelsius ℃ textnumero № textcircledP ℗ wp ℘ textrecipe ℞ \
textservicemark ℠ texttrademark ™ textohm Ω textmho ℧ textestimated ℮ beth ℶ gimel ℷ daleth ℸ \
textleftarrow ← textuparrow ↑ textrightarrow → textdownarrow ↓ leftrightarrow ↔ updownarrow ↕ \
nwarrow ↖ nearrow ↗ searrow ↘ swarrow ↙ nleftarrow ↚ nrightarrow ↛ arrowwaveleft ↜ \
arrowwaveright ↝ twoheadleftarrow ↞ twoheadrightarrow ↠ leftarrowtail ↢ rightarrowtail ↣ \
mapsto ↦ hookleftarrow ↩ hookrightarrow ↪ looparrowleft ↫ looparrowright ↬ leftrightsquigarrow ↭ \
nleftrightarrow ↮ Lsh ↰ Rsh ↱ curvearrowleft ↶ curvearrowright ↷ circlearrowleft ↺ \
circlearrowright ↻ leftharpoonup ↼ leftharpoondown ↽ upharpoonright ↾ upharpoonleft ↿ \
rightharpoonup ⇀ rightharpoondown ⇁ downharpoonright ⇂ downharpoonleft ⇃ rightleftarrows ⇄ \
dblarrowupdown ⇅ leftrightarrows ⇆ leftleftarrows ⇇ upuparrows ⇈ rightrightarrows ⇉ \
downdownarrows ⇊ leftrightharpoons ⇋ rightleftharpoons ⇌ nLeftarrow ⇍ nLeftrightarrow ⇎ \
nRightarrow ⇏ Leftarrow ⇐ Uparrow ⇑ Rightarrow ⇒ Downarrow ⇓ Leftrightarrow ⇔ Updownarrow ⇕ \
Lleftarrow ⇚ Rrightarrow ⇛ rightsquigarrow ⇝ DownArrowUpArrow ⇵ blacksquare ▪ dotplus ∔ \
rightangle ∟ angle ∠ measuredangle ∡ sphericalangle ∢ surfintegral ∯ volintegral ∰ clwintegral ∱ \
therefore ∴ because ∵ homothetic ∻ lazysinv ∾ wr ≀ cong ≅ approxnotequal ≆ approxeq ≊ \
tildetrpl ≋ allequal ≌ asymp ≍ Bumpeq ≎ bumpeq ≏ doteq ≐ doteqdot ≑ fallingdotseq ≒ \
risingdotseq ≓ eqcirc ≖ circeq ≗ estimates ≙ starequal ≛ triangleq ≜ between ≬ notlessgreater ≸ \
notgreaterless ≹ uplus ⊎ sqsubset ⊏ sqsupset ⊐ sqsubseteq ⊑ sqsupseteq ⊒ sqcap ⊓ sqcup ⊔ \
ominus ⊖ oslash ⊘ odot ⊙ circledcirc ⊚ circledast ⊛ circleddash ⊝ boxplus ⊞ boxminus ⊟ \
boxtimes ⊠ boxdot ⊡ vdash ⊢ dashv ⊣ top ⊤ perp ⊥ truestate ⊧ forcesextra ⊨ Vdash ⊩ Vvdash ⊪ \
VDash ⊫ nvdash ⊬ nvDash ⊭ nVdash ⊮ nVDash ⊯ vartriangleleft ⊲ vartriangleright ⊳ \
trianglelefteq ⊴ trianglerighteq ⊵ original ⊶ image ⊷ multimap ⊸ hermitconjmatrix ⊹ intercal ⊺ \
veebar ⊻ rightanglearc ⊾ bigwedge ⋀ bigvee ⋁ bigcap ⋂ bigcup ⋃ diamond ♢ star ⋆ divideontimes ⋇ \
bowtie ⋈ ltimes ⋉ rtimes ⋊ leftthreetimes ⋋ rightthreetimes ⋌ backsimeq ⋍ curlyvee ⋎ \
curlywedge ⋏ Subset ⋐ Supset ⋑ Cap ⋒ Cup ⋓ pitchfork ⋔ lessdot ⋖ gtrdot ⋗ verymuchless ⋘ \
verymuchgreater ⋙ lesseqgtr ⋚ gtreqless ⋛ curlyeqprec ⋞ curlyeqsucc ⋟ lnsim ⋦ gnsim ⋧ \
precedesnotsimilar ⋨ succnsim ⋩ ntriangleleft ⋪ ntriangleright ⋫ ntrianglelefteq ⋬ \
ntrianglerighteq ⋭ udots ⋰ barwedge ⌅ varperspcorrespond ⌆ lceil ⌈ rceil ⌉ lfloor ⌊ rfloor ⌋ \
recorder ⌕ ulcorner ⌜ urcorner ⌝ llcorner ⌞ lrcorner ⌟ frown ⌢ smile ⌣ lmoustache ⎰ rmoustache ⎱ \
textlangle 〈 textrangle 〉 textblank ␢ textvisiblespace ␣ square □ bigtriangleup △ \
blacktriangle ▴ vartriangle ▵ blacktriangleright ▸ triangleright ▹ bigtriangledown ▽ \
blacktriangledown ▾ triangledown ▿ blacktriangleleft ◂ triangleleft ◃ lozenge ◊ bigcirc ◯ \
textopenbullet ◦ textbigcircle ◯ textmusicalnote ♪ quarternote ♩ flat ♭ natural ♮ sharp ♯ \
longleftrightarrow ⟷ Longleftarrow ⟸ Longrightarrow ⟹ Longleftrightarrow ⟺ longmapsto ⟼ \
blacklozenge ⧫ clockoint ⨏ sqrint ⨖ amalg ⨿ lessapprox ⪅ gtrapprox ⪆ lneq ⪇ gneq ⪈ lnapprox ⪉ \
gnapprox ⪊ lesseqqgtr ⪋ gtreqqless ⪌ eqslantless ⪕ eqslantgtr ⪖ precneqq ⪵ succneqq ⪶ \
precapprox ⪷ succapprox ⪸ precnapprox ⪹ succnapprox ⪺ subseteqq ⫅ supseteqq ⫆ subsetneqq ⫋ \
supsetneqq ⫌ textdollar $ textquotesingle ' textasciigrave ` lbrace { rbrace } lnot ¬ div ÷ \
eth ƪ textdoublepipe ǂ texttildelow ˜ texttheta θ textvartheta ϑ Stigma Ϛ Digamma Ϝ digamma ϝ \
Koppa Ϟ Sampi Ϡ textTheta ϴ dddot \u{20db} ddddot \u{20dc} hslash ℏ mho ℧ surd √ Colon ∷ lessequivlnt ≲ \
greaterequivlnt ≳ preccurlyeq ≼ succcurlyeq ≽ upslopeellipsis ⋰ downslopeellipsis ⋱ circledS Ⓢ \
diagup ╱ rightmoon ☾ mercury ☿ venus ♀ male ♂ jupiter ♃ saturn ♄ uranus ♅ neptune ♆ pluto ♇ \
aries ♈ taurus ♉ gemini ♊ cancer ♋ leo ♌ virgo ♍ libra ♎ scorpio ♏ sagittarius ♐ capricornus ♑ \
aquarius ♒ pisces ♓ eighthnote ♪ UpArrowBar ⤒ DownArrowBar ⤓ LeftRightVector ⥎ \
RightUpDownVector ⥏ DownLeftRightVector ⥐ LeftUpDownVector ⥑ LeftVectorBar ⥒ RightVectorBar ⥓ \
RightUpVectorBar ⥔ RightDownVectorBar ⥕ DownLeftVectorBar ⥖ DownRightVectorBar ⥗ \
LeftUpVectorBar ⥘ LeftDownVectorBar ⥙ LeftTeeVector ⥚ RightTeeVector ⥛ RightUpTeeVector ⥜ \
RightDownTeeVector ⥝ DownLeftTeeVector ⥞ DownRightTeeVector ⥟ LeftUpTeeVector ⥠ \
LeftDownTeeVector ⥡ UpEquilibrium ⥮ ReverseUpEquilibrium ⥯ RoundImplies ⥰ Angle ⦜ \
LeftTriangleBar ⧏ RightTriangleBar ⧐ RuleDelayed ⧴ perspcorrespond ⩞ Equal ⩵ NestedLessLess ⪡ \
NestedGreaterGreater ⪢ openbracketleft 〚 openbracketright 〛 id 𝕀 Ident 𝕀";

/// The rendering of symbol macro `name`, if it is one.
fn symbol(name: &str) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut it = SYMBOLS.split(' ');
        let mut map = HashMap::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(k, v);
        }
        map
    });
    table.get(name).copied()
}

/// Macros that take one argument and render it unchanged (decorations and arrows over or under it).
const DECORATIONS: [&str; 22] = [
    "ensuremath",
    "overline",
    "underline",
    "widehat",
    "widetilde",
    "wideparen",
    "overleftarrow",
    "overrightarrow",
    "overleftrightarrow",
    "underleftarrow",
    "underrightarrow",
    "underleftrightarrow",
    "overbrace",
    "underbrace",
    "overgroup",
    "undergroup",
    "overbracket",
    "underbracket",
    "overlinesegment",
    "underlinesegment",
    "overleftharpoon",
    "overrightharpoon",
];

/// Argument specs of the macros the parser knows (pylatexenc's `latexwalker` defaults that matter for
/// answers): `{` mandatory, `[` optional, `*` optional star.
pub(super) fn arg_spec(name: &str) -> &'static str {
    match name {
        "frac" | "nicefrac" | "braket" | "ketbra" | "texorpdfstring" => "{{",
        "sqrt" | "footnote" | "hphantom" | "vphantom" | "xleftarrow" | "xrightarrow" | "color" => "[{",
        "textcolor" | "colorbox" => "[{{",
        "fcolorbox" => "[{[{{",
        "hspace" | "vspace" => "*{",
        "\\" => "*[",
        "cite" | "citet" | "citep" => "*[[{",
        "text" | "textbf" | "textit" | "textrm" | "textsf" | "textsl" | "textsc" | "texttt" | "textup"
        | "textmd" | "emph" | "mbox" | "mathrm" | "mathbf" | "mathit" | "mathsf" | "mathbb" | "mathtt"
        | "mathcal" | "mathscr" | "mathfrak" | "ket" | "bra" | "url" | "label" | "ref" | "eqref"
        | "autoref" | "cref" | "Cref" | "verb" | "not" | "hat" | "bar" | "vec" | "dot" | "ddot" | "tilde"
        | "check" | "breve" | "acute" | "grave" | "'" | "`" | "\"" | "^" | "~" | "=" | "." | "c" | "H"
        | "k" | "b" | "d" | "r" | "u" | "v" => "{",
        n if DECORATIONS.contains(&n) => "{",
        _ => "",
    }
}

/// The combining mark an accent macro puts on its argument.
fn accent(name: &str) -> Option<char> {
    Some(match name {
        "hat" | "^" => '\u{302}',
        "bar" | "=" => '\u{305}',
        "vec" => '\u{20d7}',
        "dot" | "." => '\u{307}',
        "ddot" | "\"" => '\u{308}',
        "tilde" | "~" => '\u{303}',
        "check" | "v" => '\u{30c}',
        "breve" | "u" => '\u{306}',
        "acute" | "'" => '\u{301}',
        "grave" | "`" => '\u{300}',
        "c" => '\u{327}',
        "H" => '\u{30b}',
        "k" => '\u{328}',
        "b" => '\u{331}',
        "d" => '\u{323}',
        "r" => '\u{30a}',
        _ => return None,
    })
}

fn render_arg(arg: Option<&Option<Node>>) -> Result<String, LatexError> {
    match arg {
        Some(Some(n)) => render(n),
        _ => Ok(String::new()),
    }
}

/// Fills `%s` (in order) and `%(n)s` (1-based) with the rendered arguments. Without arguments the
/// reference prints a `%s` template as it is and fails on a `%(n)s` one.
fn template(t: &str, args: &Option<Vec<Option<Node>>>) -> Result<String, LatexError> {
    let Some(args) = args else {
        return if t.contains("%(") { Err(LatexError) } else { Ok(t.to_string()) };
    };
    let mut out = String::new();
    let (mut rest, mut next) = (t, 0);
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let after = &rest[p + 1..];
        if let Some(r) = after.strip_prefix('s') {
            out.push_str(&render_arg(args.get(next))?);
            next += 1;
            rest = r;
        } else if let Some((n, r)) = after.strip_prefix('(').and_then(|a| a.split_once(")s")) {
            let n: usize = n.parse().map_err(|_| LatexError)?;
            out.push_str(&render_arg(args.get(n.wrapping_sub(1)))?);
            rest = r;
        } else {
            out.push('%');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn render_macro(name: &str, args: &Option<Vec<Option<Node>>>) -> Result<String, LatexError> {
    let content = || -> Result<String, LatexError> { args.iter().flatten().flatten().map(render).collect() };
    Ok(match name {
        "frac" | "nicefrac" => template("%s/%s", args)?,
        "sqrt" => template("√(%(2)s)", args)?,
        "textcolor" | "colorbox" => template("%(3)s", args)?,
        "fcolorbox" => template("%(5)s", args)?,
        "footnote" => template("[%(2)s]", args)?,
        "ket" => template("|%s⟩", args)?,
        "bra" => template("⟨%s|", args)?,
        "braket" => template("⟨%s|%s⟩", args)?,
        "ketbra" => template("|%s⟩⟨%s|", args)?,
        "url" => template("<%s>", args)?,
        n if DECORATIONS.contains(&n) => template("%s", args)?,
        // Text and font macros render their content (the math alphabets as plain letters, which is
        // what Python's identifier normalisation makes of them anyway).
        "text" | "textbf" | "textit" | "textrm" | "textsl" | "textsc" | "emph" | "mathrm" | "mathbf"
        | "mathit" | "mathsf" | "mathbb" | "mathtt" | "mathcal" | "mathscr" | "mathfrak" => content()?,
        "not" => {
            let arg = content()?;
            match arg.as_str() {
                "=" => "≠".to_string(),
                "<" => "≮".to_string(),
                ">" => "≯".to_string(),
                "∈" => "∉".to_string(),
                _ => arg + "\u{338}",
            }
        }
        "cos" | "sin" | "tan" | "arccos" | "arcsin" | "arctan" | "cosh" | "sinh" | "tanh" | "arccosh"
        | "arcsinh" | "arctanh" | "ln" | "log" | "exp" | "max" | "min" | "sup" | "inf" | "lim" => {
            name.to_string()
        }
        "limsup" => "lim sup".to_string(),
        "liminf" => "lim inf".to_string(),
        "," | ";" | ":" | " " => " ".to_string(),
        "quad" => "  ".to_string(),
        "qquad" => "    ".to_string(),
        "\\" | "vspace" => "\n".to_string(),
        "-" => "\u{ad}".to_string(),
        "enskip" => "\u{2002}".to_string(),
        "ref" | "autoref" | "cref" => "<ref>".to_string(),
        "Cref" => "<Ref>".to_string(),
        "eqref" => "(<ref>)".to_string(),
        "cite" | "citet" | "citep" => "<cit.>".to_string(),
        "&" | "$" | "{" | "}" | "#" | "_" | "%" => name.to_string(),
        _ => match accent(name) {
            Some(mark) => {
                let arg = content()?;
                (if arg.is_empty() { " ".to_string() } else { arg }) + &mark.to_string()
            }
            None => symbol(name).unwrap_or("").to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn lookups() {
        assert_eq!(super::symbol("pi"), Some("π"));
        assert_eq!(super::symbol("infty"), Some("∞"));
        assert_eq!(super::symbol("cdot"), Some("·"));
        assert_eq!(super::symbol("ne"), None, "pylatexenc knows \\neq but not \\ne");
    }
}
