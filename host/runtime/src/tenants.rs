//! Tenant ids: whose a call, an event, a view or a cart is. One contract
//! for every door a tenant comes in by (HTTP header, gRPC field or
//! metadata, admin API): 1 to [`MAX_TENANT_BYTES`] ASCII letters, digits,
//! `-`, `_` and `.`; the empty id is the default tenant. Anything else is
//! refused where it enters — never read as the default tenant, and never
//! long enough to push a storage key past its limit.

/// Longest tenant id, in bytes.
pub const MAX_TENANT_BYTES: usize = 64;

/// Checks a tenant id against the contract; the error says which rule
/// it breaks.
pub fn validate_tenant(tenant: &str) -> Result<(), String> {
    if tenant.len() > MAX_TENANT_BYTES {
        return Err(format!("the tenant id must be at most {MAX_TENANT_BYTES} bytes, got {}", tenant.len()));
    }
    if let Some(bad) = tenant.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("the tenant id contains {bad:?}; use ASCII letters, digits, '-', '_' and '.'"));
    }
    Ok(())
}

/// The tenant an `x-corral-tenant` header's raw bytes name: none is the
/// default tenant; bytes that are not a valid tenant id are refused.
pub fn tenant_from_header(value: Option<&[u8]>) -> Result<String, String> {
    let Some(bytes) = value else { return Ok(String::new()) };
    let Ok(tenant) = std::str::from_utf8(bytes) else {
        return Err("the tenant id is not ASCII; use ASCII letters, digits, '-', '_' and '.'".into());
    };
    validate_tenant(tenant)?;
    Ok(tenant.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_within_the_contract_pass() {
        for tenant in ["", "acme", "tenant-1", "eu.acme_2", &"a".repeat(MAX_TENANT_BYTES)] {
            assert_eq!(validate_tenant(tenant), Ok(()), "{tenant:?}");
        }
        assert_eq!(tenant_from_header(None), Ok(String::new()));
        assert_eq!(tenant_from_header(Some(b"acme")), Ok("acme".into()));
    }

    #[test]
    fn tenants_outside_the_contract_are_refused_with_the_rule() {
        let long = "a".repeat(MAX_TENANT_BYTES + 1);
        assert!(validate_tenant(&long).unwrap_err().contains("at most 64 bytes, got 65"));
        for tenant in ["café", "a b", "a/b", "a\0b", "a:b", "ten\u{202e}ant"] {
            assert!(validate_tenant(tenant).unwrap_err().contains("contains"), "{tenant:?}");
        }
        assert!(tenant_from_header(Some(b"caf\xe9")).unwrap_err().contains("not ASCII"));
    }
}
