"""The pages' Content-Security-Policy.

No inline script anywhere: pages load ES modules from /static. The one inline style is the brand's colours
(core.brand.css_properties), allowed by its hash; a logo or favicon from elsewhere, by its origin.
"""

from __future__ import annotations

import base64
import hashlib

from passgate.core.brand import Brand, asset_origin, css_properties

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'{styles}; img-src 'self' data:{images}; "
    "object-src 'none'; base-uri 'none'; form-action 'self'{forms}; frame-ancestors 'none'"
)


def content_security_policy(brand: Brand, *, form_action: str = "") -> str:
    """The policy of the pages of a site with `brand`; `form_action`: an origin forms may also send to."""
    css = css_properties(brand)
    styles = f" 'sha256-{base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()}'" if css else ""
    origins = sorted({origin for url in (brand.logo_url, brand.favicon_url) if (origin := asset_origin(url))})
    images = "".join(f" {origin}" for origin in origins)
    return POLICY.format(styles=styles, images=images, forms=f" {form_action}" if form_action else "")
