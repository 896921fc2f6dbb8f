"""The tenant query proxy: routes, authentication, PromQL enforcement, backends."""

from mtproxy.proxy.enforce import forget_memos
from mtproxy.proxy.errors import *
from mtproxy.proxy.outcomes import *
from mtproxy.proxy.params import *
from mtproxy.proxy.policy import *
from mtproxy.proxy.selectors import *
from mtproxy.proxy.series_endpoints import *

__all__ = [
    "FORM_CONTENT_TYPE",
    "MAX_DISJOINT_PARTS",
    "NOTHING_MATCHER",
    "AccessPolicy",
    "BackendError",
    "BackendRequest",
    "BadRequest",
    "Forbidden",
    "ImmediateAnswer",
    "MethodNotAllowed",
    "NotFound",
    "ProxyError",
    "RequestParams",
    "RestrictedSelector",
    "Restriction",
    "ResultCheck",
    "Unauthenticated",
    "Unavailable",
    "encode_form",
    "enforced_matches",
    "federate_request",
    "forget_memos",
    "label_values_request",
    "labels_request",
    "parse_request_params",
    "quote_meta",
    "render_error",
    "restrict_selector",
    "series_request",
    "split_disjoint",
]
