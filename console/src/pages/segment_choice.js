// A fieldset with a checkbox per segment of the tenant (ListSegments' answer), as the Funnels, Retention and
// Paths pages offer them: `boxes` in the segments' order, `chosen()` the checked segments' names.

import { field, h, uniqueId } from "../dom.js";

export function segmentChoice({ segments, chosen, testid, legend, empty }) {
  const boxes = segments.map((segment) =>
    h("input", {
      type: "checkbox",
      name: "segment",
      value: segment.name,
      checked: chosen.includes(segment.name),
      id: uniqueId("segment"),
      "data-testid": `${testid}-${segment.name.replace(/^segments\//, "")}`,
    }),
  );
  const element = h(
    "fieldset",
    { class: "paths-segments", "data-testid": `${testid}s` },
    h("legend", {}, legend),
    segments.length === 0
      ? h("p", { class: "help" }, empty)
      : boxes.map((box, index) =>
          h("div", { class: "field field-checkbox" }, box, h("label", { for: box.id }, segments[index].displayName || segments[index].name)),
        ),
  );
  return { element, boxes, chosen: () => boxes.filter((box) => box.checked).map((box) => box.value) };
}

// Holds `choice` to 1..`max` checked segments while `active()` (its breakdown is the one chosen), with the
// browser's own message on the first box. Returns the check, to run again when `active()` may have changed.
export function requireSegments(choice, active, max) {
  const check = () => {
    const chosen = choice.chosen().length;
    const problem = !active()
      ? ""
      : chosen === 0
        ? "Choose at least one segment."
        : chosen > max
          ? `Choose at most ${max} segments.`
          : "";
    choice.boxes[0]?.setCustomValidity(problem);
  };
  for (const box of choice.boxes) box.addEventListener("change", check);
  return check;
}

// The parts of a breakdown that follow its select, as the Funnels and Trends pages offer them: the property
// input (shown and required while the breakdown is by property) and the segments to compare (shown and held
// to 1..`max` while it is by segment). `checkSegments` runs the segments' check again (before applying).
export function breakdownControls({ breakdownSelect, property, segments, chosen, testid, max }) {
  const propertyInput = h("input", {
    type: "text",
    value: property,
    placeholder: "properties.plan",
    autocomplete: "off",
    "data-testid": `${testid}-breakdown-property`,
  });
  const propertyField = field("Breakdown property", propertyInput, "properties.<key>, context.<field> or person.<trait>");
  const segmentSet = segmentChoice({
    segments,
    chosen,
    testid: `${testid}-segment`,
    legend: `Segments to compare (1 to ${max}); a person in several counts in each`,
    empty: "No segments yet: create one on the Segments page.",
  });
  const checkSegments = requireSegments(segmentSet, () => breakdownSelect.value === "segment", max);
  const sync = () => {
    propertyField.hidden = breakdownSelect.value !== "property";
    propertyInput.required = breakdownSelect.value === "property";
    segmentSet.element.hidden = breakdownSelect.value !== "segment";
    checkSegments();
  };
  breakdownSelect.addEventListener("change", sync);
  sync();
  return { propertyInput, propertyField, segmentSet, checkSegments };
}
