# fibers.cr: Crystal's fibers on libgc.so.1. Each fiber builds lists held
# only by its own stack (mapped by Crystal's runtime, declared to the
# collector through GC_stackbottom, or GC_set_stackbottom with -Dpreview_mt),
# yielding as it goes, while allocation collects; then passes messages
# along a ring of fibers. Prints what it checked.
FIBERS = 50
done = Channel(Int32).new
FIBERS.times do |f|
  spawn do
    bad = 0
    5.times do |round|
      list = [] of String
      2000.times do |k|
        list << "f#{f}-r#{round}-k#{k}-" + ("x" * (k % 50))
        Fiber.yield if k % 500 == 0
      end
      2000.times do |k|
        bad += 1 unless list[k].starts_with?("f#{f}-r#{round}-k#{k}-")
      end
    end
    done.send(bad)
  end
end
bad = 0
FIBERS.times { bad += done.receive }
puts "lists: #{bad} damaged"

RING = 1000
chans = Array.new(RING + 1) { Channel(Array(String)).new }
RING.times do |i|
  spawn do
    loop do
      msg = chans[i].receive
      break if msg.empty?
      copy = msg.map { |s| s + "" }
      Fiber.yield
      chans[i + 1].send(copy)
    end
    chans[i + 1].send([] of String)
  end
end
good = 0
100.times do |r|
  chans[0].send(Array.new(20) { |k| "m#{r}-#{k}" })
  out = chans[RING].receive
  good += 1 if out.size == 20 && out[7] == "m#{r}-7"
end
chans[0].send([] of String)
chans[RING].receive
puts "ring: #{good} of 100 messages intact"
