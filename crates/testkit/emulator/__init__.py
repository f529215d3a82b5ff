"""The emulator's parts beside moto: the invoke URLs (gateway) and the functions they run."""
