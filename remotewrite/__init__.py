"""The lossless forwarding pipeline: collect, relabel, label, encode, send."""

from mtproxy.remotewrite.collect import *
from mtproxy.remotewrite.encode import *
from mtproxy.remotewrite.errors import *
from mtproxy.remotewrite.exposition import *
from mtproxy.remotewrite.job import *
from mtproxy.remotewrite.labels import *
from mtproxy.remotewrite.pipeline import *
from mtproxy.remotewrite.pushgateway import *
from mtproxy.remotewrite.reads import *
from mtproxy.remotewrite.relabel import CompiledRules, LabelSet, compile_rules
from mtproxy.remotewrite.relabel import apply as apply_relabel
from mtproxy.remotewrite.runner import *
from mtproxy.remotewrite.samples import *
from mtproxy.remotewrite.secrets import *
from mtproxy.remotewrite.senders import *
from mtproxy.remotewrite.state import *
from mtproxy.remotewrite.transform import *
from mtproxy.remotewrite.watermarks import *

__all__ = [
    "CYCLE_BUCKETS_S",
    "EXPORTED_PREFIX",
    "EXPOSITION_CONTENT_TYPE",
    "FAILURE_COLLECTION",
    "FAILURE_INTERNAL",
    "FAILURE_SECRET",
    "FAILURE_TARGET_UNREACHABLE",
    "FAILURE_TIMEOUT",
    "FAILURE_WRITE_FAILED",
    "NO_WRITE",
    "REMOTE_WRITE_HEADERS",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "CollectedSeries",
    "CollectionError",
    "Collector",
    "CollectorStatistics",
    "CompiledRules",
    "Destination",
    "DestinationKind",
    "FileStateStore",
    "HttpSender",
    "InstantSample",
    "JobReads",
    "JobRunner",
    "JobState",
    "JobStatus",
    "LabelSet",
    "LiveSeries",
    "MalformedAnswer",
    "MemoryStateStore",
    "ParsedMatrix",
    "PermanentSendError",
    "PipelineStatistics",
    "PushgatewayPipeline",
    "PushgatewaySender",
    "RemoteWriteError",
    "RemoteWriteJob",
    "RemoteWritePipeline",
    "RemoteWriteSender",
    "RetryableSendError",
    "RunnerStatistics",
    "SecretReader",
    "SecretUnavailable",
    "SendOutcome",
    "SendResult",
    "SenderFactory",
    "SenderStatistics",
    "SeriesKey",
    "SeriesOutput",
    "SeriesTransform",
    "StateStore",
    "StaticSecretReader",
    "TransformStatistics",
    "Watermarks",
    "WatermarksStatistics",
    "WindowSeries",
    "apply_relabel",
    "compile_rules",
    "compress_block",
    "copy_state",
    "encode_label_set",
    "encode_labels",
    "encode_series",
    "encode_write_request",
    "format_exposition",
    "format_value",
    "grouping_path",
    "is_stale_marker",
    "merge_extra_labels",
    "output_labels",
    "parse_matrix_answer",
    "parse_vector_answer",
    "send_error_from_response",
    "series_hash",
]
