// The console's pages, in the order the navigation lists them. The first is the landing page.

import customer from "./customer.js";
import flows from "./flows.js";
import funnels from "./funnels.js";
import lifecycle from "./lifecycle.js";
import models from "./models.js";
import paths from "./paths.js";
import retention from "./retention.js";
import segments from "./segments.js";
import trends from "./trends.js";
import value from "./value.js";

export const PAGES = Object.freeze([paths, funnels, trends, customer, retention, lifecycle, value, segments, flows, models]);
