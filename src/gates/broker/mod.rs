//! Pact Broker client and the contract gate.
