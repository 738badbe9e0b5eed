"""Where vec2text models run, and in what precision: workers.device, shared with the encoders."""

from vectorkeep.workers.device import CHOICES, Device, autocast, device_of, pick_device

__all__ = ["CHOICES", "Device", "autocast", "device_of", "pick_device"]
