"""The torch / ML layer: models, the JPEG transform, device-resident data and the one trainer."""
