//! Fleet attestation: every instance runs the version and configuration it should.
