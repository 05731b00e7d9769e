"""python -m wayline_identity: settings → logging → serve."""

from wayline.common.server import main
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings

if __name__ == "__main__":
    main(IdentitySettings, identity_service)
