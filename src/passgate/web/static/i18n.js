/**
 * The pages' sentences in the page's language. Every sentence is written in English in the code, as `t("...")`
 * (`tn(singular, plural, count)` for a count); the server puts the page's language's translations, from the same
 * gettext catalogs as the pages, in `<script type="application/json" id="passgate-messages">`. Without it (an
 * English page, or these modules used elsewhere) the English text is shown.
 *
 * Values are written `{name}` in the sentence: t("Passkey “{name}” removed.", { name }).
 */

let messages = null;

function catalog() {
  if (messages === null) {
    const element = typeof document === "undefined" ? null : document.getElementById("passgate-messages");
    try {
      messages = element ? JSON.parse(element.textContent) : {};
    } catch {
      messages = {};
    }
  }
  return messages;
}

/** The page's language (`<html lang>`), "en" when it names none. */
export function language() {
  return (typeof document === "undefined" ? "" : document.documentElement.lang) || "en";
}

function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Whether the page carries translations (a page in another language than English). */
export function translated() {
  return Object.keys(catalog()).length > 0;
}

/** `message` (English) in the page's language, with `values` filled in. */
export function t(message, values = {}) {
  const translated = catalog()[message];
  return fill(typeof translated === "string" && translated ? translated : message, values);
}

/** The sentence for `count`: `singular` or `plural` (English), or the page's language's form; `{count}` is the
 * count written as the page's language writes numbers. */
export function tn(singular, plural, count, values = {}) {
  const forms = catalog()[singular];
  let text = count === 1 ? singular : plural;
  if (Array.isArray(forms) && forms.length > 0) {
    // The catalogs' languages have one form (ja), or a first for "one" (en, de, es: 1; fr: 0 and 1) and the
    // plural after it (fr and es add a form for millions, written like the plural).
    const one = new Intl.PluralRules(language()).select(count) === "one";
    text = forms.length === 1 || one ? forms[0] : forms[1];
  }
  return fill(text, { count: new Intl.NumberFormat(language()).format(count), ...values });
}
