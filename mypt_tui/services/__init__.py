"""The app's services: the training session, the demo catalogue, processes and event buffers."""
