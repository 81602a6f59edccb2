//! The Microsoft Entra ID v2 token endpoint and the credentials that talk to it.
