"""``w2v2 serve``: a fine-tuned CTC model behind an HTTP service and a web page.

* :mod:`.limits`: the service's bounds (upload size, duration, pending requests, decoder ranges)
  and the 4xx/5xx errors that name a broken one;
* :mod:`.decoding`: the decoder of a request (the model directory's tuned one, or a bounded
  override) and a small cache of built decoders;
* :mod:`.worker`: the bounded queue and the inference thread (concurrent requests are batched);
* :mod:`.upload`: reading an upload within the limits into a temporary folder and decoding it;
* :mod:`.app`: the FastAPI application; ``page.html``: the page served at ``/``;
* :mod:`.commands`: the ``w2v2 serve`` command (uvicorn).

The model runs through :class:`w2v2.decode.transcriber.Transcriber`, the implementation behind
``w2v2 transcribe``, so the service answers what the command line prints for the same file.
"""
