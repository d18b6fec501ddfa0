"""What a CdcConsumer may run: the platform's own images, under its own ServiceAccount.

Whoever may create a CdcConsumer must not be able to run an arbitrary image, or borrow another
consumer's ServiceAccount and with it that consumer's IAM role (EKS Pod Identity binds roles to
ServiceAccounts: the analytics flusher's may write the data lake). The operator therefore
refuses, before it creates or patches anything:

* an image whose repository is not one of the platform's consumers (``PLATFORM_IMAGES``) under
  a registry prefix of ``CDC_OPERATOR_ALLOWED_REGISTRIES`` (comma-separated, e.g. the account's
  ECR ``111111111111.dkr.ecr.eu-west-1.amazonaws.com/cdc-platform``), or, with
  ``CDC_OPERATOR_REQUIRE_DIGEST=true`` (production), one not pinned by ``@sha256:`` digest;
* a ``serviceAccountName`` other than the CdcConsumer's own name (the one ``k8s/base`` creates
  for that service and Terraform binds to its role).

A refusal is a status condition ``Admitted=False`` with the reason, a Warning event, and no
change to the Deployment (one that runs keeps running the admitted spec). Pure: no I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cdc_operator._errors import AdmissionError
from cdc_operator._spec import ConsumerSpec

#: The images the platform builds (scripts/deploy-consumers.sh), by repository name.
PLATFORM_IMAGES = frozenset(
    {"event-store-writer", "stats-aggregator", "search-indexer", "analytics-flusher"}
)
_REFERENCE = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """Registry prefixes the platform's images may come from, and whether a digest is required.
    No prefix at all admits no image: the operator is configured or it runs nothing."""

    allowed_registries: tuple[str, ...] = ()
    require_digest: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AdmissionPolicy:
        prefixes = environ.get("CDC_OPERATOR_ALLOWED_REGISTRIES", "")
        return cls(
            tuple(p.strip().rstrip("/") for p in prefixes.split(",") if p.strip()),
            environ.get("CDC_OPERATOR_REQUIRE_DIGEST", "").lower() in ("1", "true", "yes"),
        )

    def check(self, name: str, spec: ConsumerSpec) -> None:
        """Raise ``AdmissionError`` unless CdcConsumer ``name`` may run ``spec``."""
        self._check_image(spec.image)
        account = spec.service_account_name
        if account is not None and account != name:
            raise AdmissionError(
                "ServiceAccountNotAllowed",
                f"spec.serviceAccountName {account!r}: a CdcConsumer runs only under its own "
                f"ServiceAccount ({name!r}), which carries its own IAM role; remove the field",
            )

    def _check_image(self, image: str) -> None:
        match = _REFERENCE.match(image)
        if match is None:
            raise AdmissionError("ImageNotAllowed", f"spec.image {image!r} is not an image name")
        repo = match["repo"]
        registry, _, repository = repo.rpartition("/")
        if not self.allowed_registries:
            raise AdmissionError(
                "ImageNotAllowed",
                f"spec.image {image!r}: no registry is allowed; set "
                "CDC_OPERATOR_ALLOWED_REGISTRIES on the operator (k8s/operator/deploy)",
            )
        if registry not in self.allowed_registries or repository not in PLATFORM_IMAGES:
            raise AdmissionError(
                "ImageNotAllowed",
                f"spec.image {image!r}: only the platform's images "
                f"({', '.join(sorted(PLATFORM_IMAGES))}) from "
                f"{', '.join(self.allowed_registries)} may run",
            )
        if self.require_digest and match["digest"] is None:
            raise AdmissionError(
                "ImageNotPinned",
                f"spec.image {image!r}: pin it by digest (@sha256:...); "
                "scripts/deploy-consumers.sh renders digests",
            )
