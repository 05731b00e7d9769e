"""Online features: a FeatureSpec (feature.proto) compiled once (spec_compiler), events matched in Python
(matcher) and aggregated incrementally per person (state, slots), so that the decision service computes the
same values as journeys' GetProfileFeatures without a query. Free of gRPC; only the converter modules
(spec_compiler, event_converter) read protobuf messages."""
