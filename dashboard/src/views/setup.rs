//! Device set-up: the CA certificate, the PAC file, and how to install them on each
//! platform. Open without signing in: a device being set up has no admin account.

use crate::app::Admin;
use crate::html::{document, esc};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn page(State(admin): State<Arc<Admin>>) -> Response {
    let proxy = esc(&admin.parts.proxy_address);
    let school = esc(admin.parts.policy.live().load().school_name());
    let body = format!(
        "<main><h1>Set up a device for {school}'s web filter</h1>\
         <p>School devices need two things: the school's filtering certificate, so that the filter can show a clear page \
         instead of a browser error, and the proxy setting, so that web traffic goes through the filter.</p>\
         <p><a href=\"/setup/ca.pem\" download=\"gatehouse-ca.pem\"><strong>Download the certificate</strong></a> \
         · <a href=\"/setup/proxy.pac\">Proxy auto-configuration (PAC) file</a> · proxy address <code>{proxy}</code></p>\
         <h2>Windows (Group Policy or Intune)</h2><ol><li>Group Policy: Computer Configuration → Windows Settings → Security Settings → \
         Public Key Policies → Trusted Root Certification Authorities → Import <code>gatehouse-ca.pem</code>. Intune: a Trusted certificate profile.</li>\
         <li>Proxy: User Configuration → Preferences → Control Panel Settings → Internet Settings, or set “Use setup script” to the PAC address above.</li></ol>\
         <h2>macOS and iOS/iPadOS</h2><ol><li>In your MDM, add a Certificate payload with <code>gatehouse-ca.pem</code> (on iOS the certificate must also be \
         trusted under Settings → General → About → Certificate Trust Settings when installed by hand).</li>\
         <li>Add a Global HTTP Proxy payload (Automatic, the PAC address above) or a Wi-Fi payload with the proxy set.</li></ol>\
         <h2>ChromeOS</h2><ol><li>Google Admin console → Devices → Networks → Certificates: upload <code>gatehouse-ca.pem</code>, tick “Chromebook” as a certificate authority.</li>\
         <li>Networks → Wi-Fi → the school network → Proxy settings: automatic, the PAC address above.</li></ol>\
         <h2>Firefox</h2><p>Firefox keeps its own certificates: set the policy <code>Certificates.ImportEnterpriseRoots</code> to true (it then trusts the Windows/macOS store), \
         or <code>Certificates.Install</code> with the file.</p>\
         <h2>Guests and personal devices</h2><p>Guest devices do not get the certificate: their HTTPS is filtered by site name only, and a blocked site shows the browser's own \
         connection error. Guests sign in to the proxy with the voucher they were given.</p></main>"
    );
    document("Device set-up", &body)
}

pub async fn ca(State(admin): State<Arc<Admin>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"gatehouse-ca.pem\"",
            ),
        ],
        admin.parts.ca_pem.clone(),
    )
        .into_response()
}

pub async fn pac(State(admin): State<Arc<Admin>>) -> Response {
    let proxy: String = admin
        .parts
        .proxy_address
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        .collect();
    let body = format!(
        "function FindProxyForURL(url, host) {{\n  if (isPlainHostName(host) || host === \"localhost\" || shExpMatch(host, \"127.*\")) {{\n    return \"DIRECT\";\n  }}\n  return \"PROXY {proxy}\";\n}}\n"
    );
    (
        [(header::CONTENT_TYPE, "application/x-ns-proxy-autoconfig")],
        body,
    )
        .into_response()
}
