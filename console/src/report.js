// The bundle `wayline report` inlines into its HTML file: a stub from the console's foundation; the report's
// helper fills it (built as an IIFE whose exports are the global WaylineReport).

import "./console.css";
