// dom.js's h() is the one door for data into the page (ADR 52, ADR 74): it must refuse every URL a browser
// would run as script, spelled the way browsers still read as javascript:, and every inline handler.
// Run by `node --test` from tests/console/test_kit.py, with a stand-in document that records attributes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { h, isSafeUrl } from "../src/dom.js";

class FakeElement {
  constructor(tag) {
    this.tag = tag;
    this.attributes = {};
    this.listeners = {};
    this.style = {};
  }
  setAttribute(name, value) {
    this.attributes[name] = value;
  }
  addEventListener(name, listener) {
    this.listeners[name] = listener;
  }
  append() {}
}
globalThis.document = {
  createElement: (tag) => new FakeElement(tag),
  createElementNS: (_ns, tag) => new FakeElement(tag),
  createTextNode: (text) => ({ text }),
};

// What browsers parse as javascript: (WHATWG URL: C0 controls and spaces trimmed, tabs and newlines removed).
const SCRIPT_URLS = [
  "javascript:alert(1)",
  "JavaScript:alert(1)",
  " javascript:alert(1)",
  "java\tscript:alert(1)",
  "java\nscript:alert(1)",
  "javascript\r:alert(1)",
  "\u0001javascript:alert(1)",
  "\u0000 javascript:alert(1)",
  "\u001fjavascript:alert(1)",
  "vbscript:msgbox(1)",
  "data:text/html,<script>alert(1)</script>",
  "\tdata:text/html;base64,PHNjcmlwdD4=",
];

test("h() refuses every spelling of a script URL in href, src and xlink:href", () => {
  for (const url of SCRIPT_URLS) {
    assert.equal(isSafeUrl(url), false, JSON.stringify(url));
    for (const attribute of ["href", "src", "xlink:href", "action", "formaction"]) {
      assert.throws(() => h("a", { [attribute]: url }), TypeError, `${attribute}=${JSON.stringify(url)}`);
    }
  }
});

test("h() keeps the URLs the console links to", () => {
  for (const url of [
    "#/customer?person=p-1",
    "#/customer?identifier=email%3Ajavascript%3Aa%40x.com",
    "/console/",
    "https://example.com/a",
    "mailto:ann@example.com",
    "data:image/png;base64,AAAA",
    "javascript-guide.html",
  ]) {
    assert.equal(isSafeUrl(url), true, url);
    assert.equal(h("a", { href: url }).attributes.href, url);
  }
});

test("h() refuses string event handlers in any letter case", () => {
  for (const name of ["onclick", "onClick", "ONCLICK", "OnMouseOver"]) {
    assert.throws(() => h("button", { [name]: "alert(1)" }), TypeError, name);
  }
  const clicked = () => {};
  assert.equal(h("button", { onClick: clicked }).listeners.click, clicked);
});
