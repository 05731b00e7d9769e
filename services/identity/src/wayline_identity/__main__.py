"""python -m wayline_identity: settings → logging → serve."""

import gc

from wayline.common.server import main
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings

# A batch of 1,000 identifier sets keeps tens of thousands of objects alive until it is answered. With the
# default young-generation threshold (700 allocations) the collector ran about 50 times per batch, promoting
# those objects and then scanning them again in the older generations: 13-15 ms of CPU per batch of 1,000 on
# first sight, a fifth of the call (docs/benchmarks.md, identity). They are freed by reference counting
# once the call ends, so collecting young objects about 30 times less often only delays the collection of
# cycles.
_YOUNG_COLLECTION_THRESHOLD = 20_000

if __name__ == "__main__":
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
    main(IdentitySettings, identity_service)
